package headlessonly

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
	"github.com/warpdns/warpdns/internal/kubedns"

	"github.com/miekg/dns"
)

// FuzzServeDNS asks random names and types. Besides never panicking, every answer must be the
// one a stock kubernetes plugin gives when the Services are headless (PTR aside: a headless
// Service has no ClusterIP to reverse), and no ClusterIP may ever be answered.
func FuzzServeDNS(f *testing.F) {
	for _, tc := range headlessCases {
		f.Add(tc.Qname, tc.Qtype, false)
	}
	for _, seed := range []string{
		"WEB.TestNS.svc.Cluster.Local.", "_http._tcp.big.testns.svc.cluster.local.", "*.testns.svc.cluster.local.",
		"web.*.svc.cluster.local.", "_http._tcp.*.*.svc.cluster.local.", "a.b.c.d.web.testns.svc.cluster.local.",
		"_tcp.web.testns.svc.cluster.local.", "__._.web.testns.svc.cluster.local.", "svc.cluster.local.",
		"pod.cluster.local.", "10-1-0-1.testns.pod.cluster.local.", "ns.dns.cluster.local.", ".", "local.",
		"dual.testns.svc.cluster.local.", "fd00-10--1.dual.testns.svc.cluster.local.",
		`a\.cluster.local.`, `a\\.cluster.local.`, `a\\\.cluster.local.`, `a\046cluster.local.`, "acluster.local.",
		"web.testns.svc.CLUSTER.local.", "cluster.local.", "10.0.96.10.in-addr.arpa.",
	} {
		f.Add(seed, dns.TypeA, true)
		f.Add(seed, dns.TypeSRV, false)
	}

	h := newPlugin(newCluster(false))
	stock := newKubernetes(newCluster(true))
	clusterIPs := netip.MustParsePrefix("10.96.0.0/16")

	f.Fuzz(func(t *testing.T, name string, qtype uint16, tcp bool) {
		if _, ok := dns.IsDomainName(name); !ok {
			return
		}
		r := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
		if _, err := r.Pack(); err != nil { // the server only sees what came off the wire
			return
		}

		for _, zones := range [][]string{h.Zones, h.k.Zones, {"."}, {"svc.cluster.local.", "example.org."}} {
			if got, want := kubedns.InZones(zones, r.Question[0].Name), plugin.Zones(zones).Matches(r.Question[0].Name) != ""; got != want {
				t.Fatalf("InZones(%v, %q) = %t, want %t", zones, r.Question[0].Name, got, want)
			}
		}

		msg, got := ask(h, r, tcp)
		if msg != nil {
			for _, rr := range append(append(msg.Answer, msg.Ns...), msg.Extra...) {
				if a, ok := rr.(*dns.A); ok {
					if ip, _ := netip.AddrFromSlice(a.A.To4()); clusterIPs.Contains(ip) {
						t.Fatalf("ClusterIP answered for %s %s: %v", dns.TypeToString[qtype], name, rr)
					}
				}
			}
		}
		if qtype == dns.TypePTR {
			return
		}
		_, want := ask(stock, r, tcp)
		if got != want {
			t.Fatalf("%s %s: %s\nstock headless: %s", dns.TypeToString[qtype], name, got, want)
		}
		// Asked again, the answer may come from the answer cache: the same.
		if _, again := ask(h, r, tcp); again != want {
			t.Fatalf("%s %s asked again: %s\nstock headless: %s", dns.TypeToString[qtype], name, again, want)
		}
		// Asked in other case, from the same entry, and spelled as the stock plugin spells it.
		for _, spelling := range []func(string) string{strings.ToUpper, swapCase} {
			r.Question[0].Name = spelling(r.Question[0].Name)
			_, got := ask(h, r, tcp)
			if _, want := ask(stock, r, tcp); got != want {
				t.Fatalf("%s %s: %s\nstock headless: %s", dns.TypeToString[qtype], r.Question[0].Name, got, want)
			}
		}
	})
}

// swapCase is s with every ASCII letter in the other case.
func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			b[i] ^= 'a' - 'A'
		}
	}
	return string(b)
}

// FuzzParse feeds random Corefile stanzas to the parser, which must fail cleanly or succeed.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"headlessonly",
		"headlessonly cluster.local {\n namespaces a b\n fallback clusterip\n ports 5353\n clients 10.0.0.0/8 fd00::1\n}",
		"headlessonly {\n ports 99999\n}",
		"headlessonly {\n clients 10.0.0.0/99\n}",
		"headlessonly {\n fallback\n}",
		"headlessonly {\n{\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		c := caddy.NewTestController("dns", input)
		c.ServerBlockKeys = []string{".:53", ".:5353"}
		h, err := parse(c)
		if err == nil && h == nil {
			t.Fatal("no handler and no error")
		}
	})
}
