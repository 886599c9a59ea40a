package envalias

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/warpdns/warpdns/internal/kubedns"

	"github.com/miekg/dns"
)

var fuzzSeeds = []string{
	"", ".", "svc.", "stg-", "stg-.", "stg-api.", "cluster.local.",
	"stg-api.platform.svc.cluster.local",
	"stg-api..svc.cluster.local.",
	".stg-api.platform.svc.cluster.local.",
	"stg-api.platform.svc.cluster.local..",
	`stg-api.platform.svc\.cluster.local.`,
	`stg\-api.platform.svc.cluster.local.`,
	"stg-\u212aPI.platform.svc.cluster.local.",
	"a.b.c.d.e.stg-eu-x9.ns.SVC.cluster.example.",
	"stg-eu.platform.svc.cluster.local.",
	"stg.k8s.example.com.", "x.stg.k8s.example.com.", "k8s.example.com.",
	"a.b.c.stg-eu.k8s.example.com.",
	"stg-" + strings.Repeat("a", 60) + ".platform.svc.cluster.local.",
	strings.Repeat("abcdefghi.", 24) + "stg.k8s.example.com.",
}

// FuzzParseName checks that a rewritten name is a valid name in a kubernetes
// zone and maps back to the asked name.
func FuzzParseName(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	for _, tc := range slices.Concat(aliasedCases, passThroughCases) {
		f.Add(tc.Qname)
	}
	a := newEnvalias(nil).aliaser

	f.Fuzz(func(t *testing.T, qname string) {
		al, ok := a.aliasOf(qname)
		if !ok {
			return
		}
		if !slices.Contains(a.envs, al.env) {
			t.Fatalf("%q: env %q is not configured", qname, al.env)
		}
		if al.name != strings.ToLower(al.name) {
			t.Fatalf("%q: rewritten name %q is not lower case", qname, al.name)
		}
		prefix, ok := kubedns.CutZone(al.name, al.target)
		if !ok {
			t.Fatalf("%q: rewritten name %q does not end in target %q", qname, al.name, al.target)
		}
		if !strings.EqualFold(prefix+al.asked, qname) || !strings.HasSuffix(qname, al.asked) {
			t.Fatalf("%q: %q maps back to %q", qname, al.name, prefix+al.asked)
		}
		if al.askedZone != "" && !strings.HasSuffix(qname, al.askedZone) {
			t.Fatalf("%q: the asked zone %q is not a suffix", qname, al.askedZone)
		}
		if _, valid := dns.IsDomainName(qname); !valid || !dns.IsFqdn(qname) {
			return // not a name a query can carry; nothing more to hold
		}
		if _, ok := dns.IsDomainName(al.name); !ok || !dns.IsFqdn(al.name) {
			t.Fatalf("%q: rewritten name %q is not a valid domain name", qname, al.name)
		}
		if plugin.Zones(a.zones).Matches(al.name) == "" {
			t.Fatalf("%q: rewritten name %q is in none of the zones", qname, al.name)
		}
	})
}

// FuzzServeDNS sends random names through envalias to a next plugin that
// answers about whatever it is asked, and checks that the reply speaks only
// of the asked name.
func FuzzServeDNS(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, dns.TypeA)
	}
	for _, tc := range slices.Concat(aliasedCases, passThroughCases) {
		f.Add(tc.Qname, tc.Qtype)
	}

	f.Fuzz(func(t *testing.T, qname string, qtype uint16) {
		if _, ok := dns.IsDomainName(qname); !ok || !dns.IsFqdn(qname) {
			return // a query off the wire always has a valid name
		}
		var reply *dns.Msg
		next := plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			name := r.Question[0].Name
			reply = new(dns.Msg)
			reply.SetReply(r)
			reply.Answer = []dns.RR{
				&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{10, 0, 0, 1}},
				&dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET}, Target: "ep." + name},
				&dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: "db.example.net."},
			}
			reply.Ns = []dns.RR{soa("cluster.local.")}
			reply.Extra = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "ep." + name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{10, 0, 0, 1}}}
			return dns.RcodeSuccess, w.WriteMsg(reply)
		})
		e := newEnvalias(next)
		e.services = nil // no collisions: parse alone decides

		req := new(dns.Msg).SetQuestion(qname, qtype)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := e.ServeDNS(context.TODO(), rec, req); err != nil {
			t.Fatal(err)
		}
		resp := rec.Msg
		if len(resp.Question) != 1 || resp.Question[0] != req.Question[0] {
			t.Fatalf("%q: question %v", qname, resp.Question)
		}
		al, aliased := e.aliasOf(qname)
		if !aliased {
			if resp != reply {
				t.Fatalf("%q: not passed through", qname)
			}
			return
		}
		for _, rr := range resp.Answer {
			if rr.Header().Name != qname {
				t.Fatalf("%q: answer owner %q", qname, rr.Header().Name)
			}
		}
		srv := resp.Answer[1].(*dns.SRV)
		if !strings.EqualFold(srv.Target, "ep."+qname) || resp.Extra[0].Header().Name != srv.Target {
			t.Fatalf("%q: SRV target %q, additional %q", qname, srv.Target, resp.Extra[0].Header().Name)
		}
		if cname := resp.Answer[2].(*dns.CNAME); cname.Target != "db.example.net." {
			t.Fatalf("%q: outside CNAME target changed to %q", qname, cname.Target)
		}
		if got := resp.Ns[0].(*dns.SOA); al.askedZone == "" && got.String() != soa("cluster.local.").String() ||
			al.askedZone != "" && (got.Hdr.Name != al.askedZone || !dns.IsSubDomain(got.Hdr.Name, qname)) {
			t.Fatalf("%q: SOA %s", qname, got)
		}
	})
}

// FuzzParseConfig feeds arbitrary Corefile stanzas to the config parser: it
// must return a handler or an error, never panic.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"envalias stg",
		"envalias stg prd {\n separator _\n zones cluster.local\n domain k8s.example.com\n}",
		"envalias {\n}",
		"envalias stg {\n separator .\n}",
		"envalias stg {\n sepparator -\n}",
		"envalias stg {\n domain .\n}",
		"envalias stg {\n{\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		c := caddy.NewTestController("dns", input)
		c.ServerBlockKeys = []string{".:53"}
		e, err := parse(c)
		if err == nil && e == nil {
			t.Fatal("no handler and no error")
		}
	})
}
