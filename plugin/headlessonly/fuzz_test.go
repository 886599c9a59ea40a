package headlessonly

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
	"github.com/warpdns/warpdns/internal/corefiletest"
	"github.com/warpdns/warpdns/internal/kubedns"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/util/validation"
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

// FuzzParse feeds random Corefile stanzas to the parser. A stanza it accepts must give a
// configuration that the README's Syntax allows, and that configuration, written back into a
// Corefile, must parse to the same one.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"headlessonly",
		"headlessonly cluster.local {\n namespaces a b\n fallback clusterip\n ports 5353\n clients 10.0.0.0/8 fd00::1\n}",
		"headlessonly {\n ports 99999\n}",
		"headlessonly {\n clients 10.0.0.0/99\n}",
		"headlessonly {\n fallback\n}",
		"headlessonly {\n{\n",
		"headlessonly \"a b\" Example.ORG {\n ports 53 53\n clients ::ffff:10.1.2.3/104 10.1.2.3\n namespaces b a b\n}",
	} {
		f.Add(seed)
	}
	keys := []string{".:53", ".:5353"}
	f.Fuzz(func(t *testing.T, input string) {
		if first := caddy.NewTestController("dns", input); !first.Next() || first.Val() != pluginName {
			return // setup is only called for its own directive
		}
		c := caddy.NewTestController("dns", input)
		c.ServerBlockKeys = keys
		h, err := parse(c)
		if err != nil {
			return
		}
		if h == nil {
			t.Fatal("no handler and no error")
		}
		got := configOf(h)
		if err := syntaxAllows(got, keys); err != nil {
			t.Fatalf("%q parsed to %+v: %v", input, got, err)
		}
		c, err = corefiletest.Controller(keys, pluginName, got.zones, got.lines())
		if err != nil {
			t.Fatalf("%q parsed to %+v, which does not write back: %v", input, got, err)
		}
		again, err := parse(c)
		if err != nil {
			t.Fatalf("%q parsed to %+v; written back, it fails: %v", input, got, err)
		}
		if back := configOf(again); !reflect.DeepEqual(back, got) {
			t.Fatalf("%q parsed to %+v; written back, to %+v", input, got, back)
		}
	})
}

// config is a parsed stanza, as the Syntax section of the README describes it.
type config struct {
	zones, namespaces []string
	fallback          bool
	ports             []uint16
	clients           []netip.Prefix
}

func configOf(h *HeadlessOnly) config {
	return config{h.Zones, slices.Sorted(maps.Keys(h.namespaces)), h.fallback, h.ports, h.clients}
}

// lines are the stanza's block.
func (c config) lines() [][]string {
	var lines [][]string
	if len(c.namespaces) > 0 {
		lines = append(lines, append([]string{"namespaces"}, c.namespaces...))
	}
	if c.fallback {
		lines = append(lines, []string{"fallback", "clusterip"})
	}
	if len(c.ports) > 0 {
		line := []string{"ports"}
		for _, p := range c.ports {
			line = append(line, strconv.Itoa(int(p)))
		}
		lines = append(lines, line)
	}
	if len(c.clients) > 0 {
		line := []string{"clients"}
		for _, p := range c.clients {
			line = append(line, p.String())
		}
		lines = append(lines, line)
	}
	return lines
}

// syntaxAllows checks c against the README's Syntax: fully qualified zones in lower case, once
// each; namespaces that are Kubernetes namespace names; ports of the server block; client networks
// as the source addresses are compared (masked, IPv4 unmapped, no zone).
func syntaxAllows(c config, keys []string) error {
	if len(c.zones) == 0 || !slices.IsSorted(c.zones) || len(slices.Compact(slices.Clone(c.zones))) != len(c.zones) {
		return fmt.Errorf("zones %q: want at least one, each once", c.zones)
	}
	for _, z := range c.zones {
		if _, ok := dns.IsDomainName(z); !ok || !dns.IsFqdn(z) || strings.ToLower(z) != z {
			return fmt.Errorf("zone %q is not a fully qualified name in lower case", z)
		}
	}
	for _, ns := range c.namespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("namespace %q: %v", ns, errs)
		}
	}
	for _, p := range c.ports {
		if !slices.Contains(blockPorts(keys), p) {
			return fmt.Errorf("port %d is not one of the server block's", p)
		}
	}
	for _, p := range c.clients {
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return fmt.Errorf("client network %v is not as source addresses are compared", p)
		}
	}
	return nil
}
