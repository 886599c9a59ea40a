package envalias

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/warpdns/warpdns/internal/corefiletest"
	"github.com/warpdns/warpdns/internal/kubedns"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/util/validation"
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

// FuzzParseConfig feeds arbitrary Corefile stanzas to the config parser. A stanza it accepts
// must give a configuration that the README's Syntax allows, and that configuration, written back
// into a Corefile, must parse to the same one.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"envalias stg",
		"envalias stg prd {\n separator _\n zones cluster.local\n domain k8s.example.com\n}",
		"envalias {\n}",
		"envalias stg {\n separator .\n}",
		"envalias stg {\n sepparator -\n}",
		"envalias stg {\n domain .\n}",
		"envalias stg {\n{\n",
		"envalias STG stg-EU dev {\n separator -_-\n zones Cluster.Local. \"a b\" .\n domain K8S.example.com. x\n}",
	} {
		f.Add(seed)
	}
	keys := []string{".:53"}
	f.Fuzz(func(t *testing.T, input string) {
		if first := caddy.NewTestController("dns", input); !first.Next() || first.Val() != pluginName {
			return // setup is only called for its own directive
		}
		c := caddy.NewTestController("dns", input)
		c.ServerBlockKeys = keys
		e, err := parse(c)
		if err != nil {
			return
		}
		if e == nil {
			t.Fatal("no handler and no error")
		}
		if err := syntaxAllows(e); err != nil {
			t.Fatalf("%q parsed to %+v: %v", input, e, err)
		}
		lines := [][]string{{"separator", e.sep}, append([]string{"zones"}, e.Zones...)}
		if len(e.domains) > 0 {
			lines = append(lines, append([]string{"domain"}, e.domains...))
		}
		c, err = corefiletest.Controller(keys, pluginName, e.envs, lines)
		if err != nil {
			t.Fatalf("%q parsed to %+v, which does not write back: %v", input, e, err)
		}
		again, err := parse(c)
		if err != nil {
			t.Fatalf("%q parsed to %+v; written back, it fails: %v", input, e, err)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("%q parsed to %+v; written back, to %+v", input, e, again)
		}
	})
}

// syntaxAllows checks e against the README's Syntax: ENVs that are DNS labels, in lower case,
// each once, longest first; a separator of letters, digits, - and _; zones and domains that are
// fully qualified names in lower case, no domain the root.
func syntaxAllows(e *Envalias) error {
	if len(e.envs) == 0 || len(slices.Compact(slices.Sorted(slices.Values(e.envs)))) != len(e.envs) {
		return fmt.Errorf("ENVs %q: want at least one, each once", e.envs)
	}
	for i, env := range e.envs {
		if errs := validation.IsDNS1123Label(env); len(errs) > 0 || (i > 0 && len(env) > len(e.envs[i-1])) {
			return fmt.Errorf("ENV %q: %v, or not longest first", env, errs)
		}
	}
	if e.sep == "" || strings.ToLower(e.sep) != e.sep || strings.Trim(e.sep, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return fmt.Errorf("separator %q", e.sep)
	}
	for _, z := range slices.Concat(e.Zones, e.domains) {
		if _, ok := dns.IsDomainName(z); !ok || !dns.IsFqdn(z) || strings.ToLower(z) != z {
			return fmt.Errorf("zone or domain %q is not a fully qualified name in lower case", z)
		}
	}
	if slices.Contains(e.domains, ".") || len(e.Zones) == 0 {
		return fmt.Errorf("domains %q, zones %q", e.domains, e.Zones)
	}
	return nil
}
