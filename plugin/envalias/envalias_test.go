package envalias

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
)

// kubeData is what the kubernetes plugin (with headlessonly in front of it)
// answers in every zone. api's SRV targets are endpoint names, as
// headlessonly gives them for ClusterIP Services too; ext's target is
// resolved, as the kubernetes plugin resolves ExternalName targets.
const kubeData = `$TTL 5
api.platform.svc            A     10.96.0.10
api.platform.svc            AAAA  fd00::10
api.platform.svc            TXT   "api"
api.platform.svc            SRV   0 50 80 10-0-0-1.api.platform.svc
api.platform.svc            SRV   0 50 80 10-0-0-2.api.platform.svc
_http._tcp.api.platform.svc SRV   0 50 80 10-0-0-1.api.platform.svc
_http._tcp.api.platform.svc SRV   0 50 80 10-0-0-2.api.platform.svc
10-0-0-1.api.platform.svc   A     10.0.0.1
10-0-0-2.api.platform.svc   A     10.0.0.2
eu-api.platform.svc         A     10.96.0.50
stg-db.platform.svc         A     10.96.0.20
ext.platform.svc            CNAME db.example.net.
db.example.net.             A     192.0.2.1
alias.platform.svc          CNAME api.platform.svc
`

// kubeFake answers like the kubernetes plugin for kubeData in each of its
// zones, and a PTR record. It remembers the last reply it wrote.
type kubeFake struct {
	zones map[string][]dns.RR
	req   *dns.Msg // the last request
	reply *dns.Msg // the last reply
	text  string   // reply.String() when it was written
}

func newKubeFake(zones ...string) *kubeFake {
	f := &kubeFake{zones: map[string][]dns.RR{}}
	for _, z := range zones {
		zp := dns.NewZoneParser(strings.NewReader(kubeData), z, "")
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			f.zones[z] = append(f.zones[z], rr)
		}
		if err := zp.Err(); err != nil {
			panic(err)
		}
	}
	f.zones["in-addr.arpa."] = []dns.RR{test.PTR("10.0.96.10.in-addr.arpa. 5 IN PTR api.platform.svc.cluster.local.")}
	return f
}

func (f *kubeFake) Name() string { return "kubernetes" }

func (f *kubeFake) ServeDNS(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	f.req = r
	q := r.Question[0]
	qname := strings.ToLower(q.Name)
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true

	zone := plugin.Zones(slices.Collect(maps.Keys(f.zones))).Matches(qname)
	if zone == "" {
		m.Rcode = dns.RcodeRefused
		return f.write(w, m)
	}

	exists := false
	for _, rr := range f.zones[zone] {
		h := rr.Header()
		if h.Name != qname {
			exists = exists || dns.IsSubDomain(qname, h.Name) // an empty non-terminal
			continue
		}
		exists = true
		if h.Rrtype == q.Qtype || h.Rrtype == dns.TypeCNAME || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.SRV: // addresses of the targets
			for _, x := range f.zones[zone] {
				if x.Header().Name == rr.Target && x.Header().Rrtype == dns.TypeA {
					m.Extra = append(m.Extra, dns.Copy(x))
				}
			}
		case *dns.CNAME:
			for _, x := range f.zones[zone] {
				if x.Header().Name == rr.Target && x.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, dns.Copy(x))
				}
			}
		}
	}
	if len(m.Answer) == 0 {
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = []dns.RR{soa(zone)}
	}
	return f.write(w, m)
}

func (f *kubeFake) write(w dns.ResponseWriter, m *dns.Msg) (int, error) {
	f.reply, f.text = m, m.String()
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// fakeServices has the Services named "name.namespace".
type fakeServices map[string]bool

func (s fakeServices) serviceExists(key string) bool { return s[key] }

func newEnvalias(next plugin.Handler) *Envalias {
	return &Envalias{
		Next: next,
		aliaser: aliaser{
			envs:    []string{"stg-eu", "stg"},
			sep:     "-",
			zones:   []string{"cluster.local.", "cluster.example."},
			domains: []string{"k8s.example.com."},
		},
		services: fakeServices{"stg-db.platform": true},
	}
}

// answer is the case of qname and qtype answered with one record, rdata.
func answer(qname string, qtype uint16, rdata string) test.Case {
	rr, _ := dns.NewRR(qname + " 5 IN " + dns.TypeToString[qtype] + " " + rdata)
	return test.Case{Qname: qname, Qtype: qtype, Answer: []dns.RR{rr}}
}

// soa is the SOA the kubernetes plugin gives for zone.
func soa(zone string) dns.RR {
	return test.SOA(zone + " 5 IN SOA ns.dns." + zone + " hostmaster." + zone + " 1 7200 1800 86400 5")
}

// srvCase is the SRV answer for api's two endpoints, asked as qname, with the targets below svc.
func srvCase(qname, svc string) test.Case {
	return test.Case{
		Qname: qname, Qtype: dns.TypeSRV,
		Answer: []dns.RR{
			test.SRV(qname + " 5 IN SRV 0 50 80 10-0-0-1." + svc),
			test.SRV(qname + " 5 IN SRV 0 50 80 10-0-0-2." + svc),
		},
		Extra: []dns.RR{test.A("10-0-0-1." + svc + " 5 IN A 10.0.0.1"), test.A("10-0-0-2." + svc + " 5 IN A 10.0.0.2")},
	}
}

// aliasedCases are answered for the alias, passThroughCases are names envalias must not touch.
var aliasedCases = []test.Case{
	// The ENV-SVC form.
	answer("stg-api.platform.svc.cluster.local.", dns.TypeA, "10.96.0.10"),
	answer("stg-api.platform.svc.cluster.local.", dns.TypeAAAA, "fd00::10"),
	answer("stg-api.platform.svc.cluster.local.", dns.TypeTXT, `"api"`),
	{
		Qname: "stg-api.platform.svc.cluster.local.", Qtype: dns.TypeANY,
		Answer: []dns.RR{
			test.A("stg-api.platform.svc.cluster.local. 5 IN A 10.96.0.10"),
			test.AAAA("stg-api.platform.svc.cluster.local. 5 IN AAAA fd00::10"),
			test.SRV("stg-api.platform.svc.cluster.local. 5 IN SRV 0 50 80 10-0-0-1.stg-api.platform.svc.cluster.local."),
			test.SRV("stg-api.platform.svc.cluster.local. 5 IN SRV 0 50 80 10-0-0-2.stg-api.platform.svc.cluster.local."),
			test.TXT(`stg-api.platform.svc.cluster.local. 5 IN TXT "api"`),
		},
		Extra: []dns.RR{
			test.A("10-0-0-1.stg-api.platform.svc.cluster.local. 5 IN A 10.0.0.1"),
			test.A("10-0-0-2.stg-api.platform.svc.cluster.local. 5 IN A 10.0.0.2"),
		},
	},
	// 0x20: the question, and the names, as asked.
	answer("sTg-aPi.PlatForm.SVC.Cluster.LOCAL.", dns.TypeA, "10.96.0.10"),
	srvCase("_http._tcp.stg-api.platform.svc.cluster.local.", "stg-api.platform.svc.cluster.local."),
	srvCase("_HTTP._Tcp.Stg-API.platform.svc.cluster.local.", "Stg-API.platform.svc.cluster.local."),
	srvCase("stg-api.platform.svc.cluster.local.", "stg-api.platform.svc.cluster.local."),
	// An endpoint name, the follow-up lookup of an SRV target.
	answer("10-0-0-1.stg-api.platform.svc.cluster.local.", dns.TypeA, "10.0.0.1"),
	// Negative answers keep cluster.local's SOA: the name is in cluster.local.
	{Qname: "stg-nope.platform.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "stg-api.platform.svc.cluster.local.", Qtype: dns.TypeMX, Ns: []dns.RR{soa("cluster.local.")}},
	// ExternalName: the target outside the Service stays as it is.
	{Qname: "stg-ext.platform.svc.cluster.local.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.A("db.example.net. 5 IN A 192.0.2.1"), // sorted, as SortAndCheck sorts
		test.CNAME("stg-ext.platform.svc.cluster.local. 5 IN CNAME db.example.net."),
	}},
	{Qname: "stg-alias.platform.svc.cluster.local.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.A("api.platform.svc.cluster.local. 5 IN A 10.96.0.10"),
		test.CNAME("stg-alias.platform.svc.cluster.local. 5 IN CNAME api.platform.svc.cluster.local."),
	}},
	// Overlapping ENVs: the longest wins, stg-eu-api is api in stg-eu, not eu-api in stg.
	answer("stg-eu-api.platform.svc.cluster.local.", dns.TypeA, "10.96.0.10"),
	// A second zone.
	answer("stg-api.platform.svc.cluster.example.", dns.TypeA, "10.96.0.10"),
	{Qname: "stg-nope.platform.svc.cluster.example.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.example.")}},

	// The domain form.
	answer("api.platform.stg.k8s.example.com.", dns.TypeA, "10.96.0.10"),
	srvCase("_http._tcp.api.platform.stg.k8s.example.com.", "api.platform.stg.k8s.example.com."),
	answer("10-0-0-2.api.platform.stg-eu.k8s.example.com.", dns.TypeA, "10.0.0.2"),
	// The SOA of a negative answer is the apex of the asked zone, ENV.DOMAIN.
	{Qname: "nope.platform.stg.k8s.example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("stg.k8s.example.com.")}},
	{Qname: "Api.Platform.STG.k8s.Example.COM.", Qtype: dns.TypeMX, Ns: []dns.RR{soa("STG.k8s.Example.COM.")}},
	{Qname: "stg.k8s.example.com.", Qtype: dns.TypeSOA, Ns: []dns.RR{soa("stg.k8s.example.com.")}},
	{Qname: "stg-ext.platform.stg.k8s.example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("stg.k8s.example.com.")}},
}

var passThroughCases = []test.Case{
	// The collision rule: a real Service stg-db is served as itself.
	answer("stg-db.platform.svc.cluster.local.", dns.TypeA, "10.96.0.20"),
	answer("api.platform.svc.cluster.local.", dns.TypeA, "10.96.0.10"),
	srvCase("_http._tcp.api.platform.svc.cluster.local.", "api.platform.svc.cluster.local."),
	// Another environment's name is not ours.
	{Qname: "prd-api.platform.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "api.platform.prd.k8s.example.com.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
	// A prefix that leaves no Service name.
	{Qname: "stg-1api.platform.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "stg-.platform.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "stg-api.platform.pod.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
	// Outside the zones.
	{Qname: "stg-api.platform.svc.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
	answer("10.0.96.10.in-addr.arpa.", dns.TypePTR, "api.platform.svc.cluster.local."),
}

func TestServeDNS(t *testing.T) {
	next := newKubeFake("cluster.local.", "cluster.example.")
	e := newEnvalias(next)

	for _, table := range []struct {
		passThrough bool
		cases       []test.Case
	}{{false, aliasedCases}, {true, passThroughCases}} {
		for _, tc := range table.cases {
			t.Run(dns.TypeToString[tc.Qtype]+" "+tc.Qname, func(t *testing.T) {
				req := tc.Msg()
				asked, before := req.Question[0], req.String()
				rec := dnstest.NewRecorder(&test.ResponseWriter{})
				if _, err := e.ServeDNS(context.TODO(), rec, req); err != nil {
					t.Fatalf("unexpected error: %s", err)
				}
				resp := rec.Msg
				if resp == nil {
					t.Fatal("no reply")
				}
				if len(resp.Question) != 1 || resp.Question[0] != asked {
					t.Errorf("question %v, want %v", resp.Question, asked)
				}
				if err := test.SortAndCheck(resp, tc); err != nil {
					t.Error(err)
				}
				// SortAndCheck ignores most of the SOA: every record in full, names byte for byte.
				for _, s := range []struct {
					name      string
					got, want []dns.RR
				}{{"answer", resp.Answer, tc.Answer}, {"authority", resp.Ns, tc.Ns}, {"additional", resp.Extra, tc.Extra}} {
					if got, want := rrStrings(s.got), rrStrings(s.want); !slices.Equal(got, want) {
						t.Errorf("%s section\n  %q\nwant\n  %q", s.name, got, want)
					}
				}

				if req.String() != before {
					t.Error("the request was changed")
				}
				if next.reply.String() != next.text {
					t.Error("the next plugin's reply was changed")
				}
				if table.passThrough && (next.req != req || resp != next.reply) {
					t.Error("not passed through untouched")
				}
				if !table.passThrough && (next.req == req || resp == next.reply) {
					t.Error("not aliased")
				}
			})
		}
	}
}

func rrStrings(rrs []dns.RR) []string {
	s := make([]string, len(rrs))
	for i, rr := range rrs {
		s[i] = rr.String()
	}
	slices.Sort(s)
	return s
}

// A name restored to the asked form can be longer than the one the next plugin wrote: ENV- adds
// len(ENV)+1 octets, and a domain longer than svc.ZONE adds the difference. A record whose
// restored name would pass 255 octets is one the client's name could never have had: it is
// dropped with its glue, and the rest of the reply stays valid.
func TestRestoreTooLong(t *testing.T) {
	t.Parallel()
	host := strings.Repeat("h", 63) // the longest endpoint hostname
	longZone := strings.Repeat("a", 62) + "." + strings.Repeat("b", 62) + "." + strings.Repeat("c", 51) + "."
	longDomain := strings.Repeat("d", 62) + "." + strings.Repeat("e", 62) + "." + strings.Repeat("f", 58) + "."

	for _, tc := range []struct {
		form, qname string // qname is asked; the next plugin answers for its alias
		e           *Envalias
	}{
		{"ENV-SVC", "_http._tcp.stg-svc.ns.svc." + longZone,
			&Envalias{aliaser: aliaser{envs: []string{"stg"}, sep: "-", zones: []string{longZone}}}},
		{"domain", "_http._tcp.svc.ns.stg." + longDomain,
			&Envalias{aliaser: aliaser{envs: []string{"stg"}, sep: "-", zones: []string{"cluster.local."}, domains: []string{longDomain}}}},
	} {
		t.Run(tc.form, func(t *testing.T) {
			t.Parallel()
			tc.e.Next = plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
				q := r.Question[0].Name
				svc := strings.TrimPrefix(q, "_http._tcp.")
				long, short := host+"."+svc, "10-0-0-1."+svc
				m := new(dns.Msg)
				m.SetReply(r)
				m.Answer = []dns.RR{
					test.SRV(q + " 5 IN SRV 0 50 8080 " + long),
					test.SRV(q + " 5 IN SRV 0 50 8080 " + short),
				}
				m.Extra = []dns.RR{test.A(long + " 5 IN A 10.0.0.2"), test.A(short + " 5 IN A 10.0.0.1")}
				return dns.RcodeSuccess, w.WriteMsg(m)
			})
			if _, ok := dns.IsDomainName(host + "." + strings.TrimPrefix(tc.qname, "_http._tcp.")); ok {
				t.Fatal("the fixture's restored target is not too long")
			}

			short := "10-0-0-1." + strings.TrimPrefix(tc.qname, "_http._tcp.")
			askOverTheWire(t, tc.e, test.Case{
				Qname: tc.qname, Qtype: dns.TypeSRV,
				Answer: []dns.RR{test.SRV(tc.qname + " 5 IN SRV 0 50 8080 " + short)},
				Extra:  []dns.RR{test.A(short + " 5 IN A 10.0.0.1")},
			})
		})
	}
}

// askOverTheWire serves e on loopback, asks it want's question over UDP and TCP (EDNS0, 4096
// bytes) and checks the replies, as miekg/dns unpacks them, against want.
func askOverTheWire(t *testing.T, e *Envalias, want test.Case) {
	t.Helper()
	s := dnstest.NewMultipleServer(func(w dns.ResponseWriter, r *dns.Msg) { e.ServeDNS(context.Background(), w, r) })
	defer s.Close()
	for _, network := range []string{"udp", "tcp"} {
		req := new(dns.Msg).SetQuestion(want.Qname, want.Qtype)
		req.SetEdns0(4096, false)
		resp, _, err := (&dns.Client{Net: network}).Exchange(req, s.Addr)
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if err := test.SortAndCheck(resp, want); err != nil {
			t.Errorf("%s: %v\n%s", network, err, resp)
		}
	}
}

// TestServeDNSCachedReply checks that a reply shared with others (as the
// cache's is) is copied, not changed, and that a reply without a question
// gets the asked one.
func TestServeDNSCachedReply(t *testing.T) {
	shared := new(dns.Msg)
	shared.Answer = []dns.RR{test.A("api.platform.svc.cluster.local. 5 IN A 10.96.0.10")}
	text := shared.String()
	next := plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		return dns.RcodeSuccess, w.WriteMsg(shared)
	})
	e := newEnvalias(next)

	for range 2 {
		req := new(dns.Msg).SetQuestion("STG-api.platform.svc.cluster.local.", dns.TypeA)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := e.ServeDNS(context.TODO(), rec, req); err != nil {
			t.Fatal(err)
		}
		if got := rec.Msg.Question[0]; got != req.Question[0] {
			t.Errorf("question %v, want %v", got, req.Question[0])
		}
		if got := rec.Msg.Answer[0].Header().Name; got != "STG-api.platform.svc.cluster.local." {
			t.Errorf("owner %q, want the asked name", got)
		}
		if shared.String() != text {
			t.Fatalf("the shared reply was changed:\n%s", shared)
		}
	}
}

func TestServeDNSMetrics(t *testing.T) {
	e := newEnvalias(newKubeFake("cluster.local."))
	count := func(env string) float64 {
		var m dto.Metric
		if err := requestCount.WithLabelValues("", env).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	stg, stgEU := count("stg"), count("stg-eu")

	for _, q := range []string{
		"stg-api.platform.svc.cluster.local.",     // stg
		"api.platform.stg.k8s.example.com.",       // stg
		"stg-eu-api.platform.svc.cluster.local.",  // stg-eu
		"stg-db.platform.svc.cluster.local.",      // a Service: not counted
		"api.platform.svc.cluster.local.",         // not an alias
		"prd-api.platform.svc.cluster.local.",     // not an alias
		"api.platform.prd.k8s.example.com.",       // not an alias
		"stg-api.platform.svc.cluster.local.nope", // not fully qualified
	} {
		e.ServeDNS(context.TODO(), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion(q, dns.TypeA))
	}
	if got := count("stg") - stg; got != 2 {
		t.Errorf("stg counted %v times, want 2", got)
	}
	if got := count("stg-eu") - stgEU; got != 1 {
		t.Errorf("stg-eu counted %v times, want 1", got)
	}
}

func TestServeDNSSeparator(t *testing.T) {
	e := newEnvalias(newKubeFake("cluster.local."))
	e.sep = "--"
	for q, aliased := range map[string]bool{
		"stg--api.platform.svc.cluster.local.":  true,
		"STG--API.platform.svc.cluster.local.":  true,
		"stg-api.platform.svc.cluster.local.":   false,
		"stg---api.platform.svc.cluster.local.": false, // "-api" is not a Service name
	} {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		e.ServeDNS(context.TODO(), rec, new(dns.Msg).SetQuestion(q, dns.TypeA))
		if got := rec.Rcode == dns.RcodeSuccess; got != aliased {
			t.Errorf("%s: rcode %s, aliased should be %t", q, dns.RcodeToString[rec.Rcode], aliased)
		}
	}
}

func TestServeDNSNoQuestion(t *testing.T) {
	e := newEnvalias(test.NextHandler(dns.RcodeFormatError, nil))
	if rcode, _ := e.ServeDNS(context.TODO(), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg)); rcode != dns.RcodeFormatError {
		t.Errorf("rcode %d, want the next plugin's", rcode)
	}
}

// A restored name may take 255 octets on the wire, not 256 (RFC 1035 section 2.3.4); as text, with
// its final dot, that is 254 characters, not 255. SRV targets the next plugin answers at 251 and
// 252 octets come back with stg- at 255 and 256: the first is kept with its address, the second
// left out with its, and the reply is one that miekg/dns unpacks.
func TestRestoreWireLength(t *testing.T) {
	t.Parallel()
	zone := strings.Repeat("z", 60) + "." + strings.Repeat("y", 60) + "." + strings.Repeat("x", 60) + "."
	asked := "stg-svc.ns.svc." + zone // what the client asked for, less _http._tcp.
	host := func(wire int) string {   // the endpoint label that makes the restored target wire octets long
		return strings.Repeat("h", wire-2-len(asked))
	}
	e := &Envalias{aliaser: aliaser{envs: []string{"stg"}, sep: "-", zones: []string{zone}}}
	e.Next = plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		q := r.Question[0].Name
		svc := strings.TrimPrefix(q, "_http._tcp.")
		m := new(dns.Msg)
		m.SetReply(r)
		for i, wire := range []int{255, 256} {
			target := host(wire) + "." + svc
			m.Answer = append(m.Answer, test.SRV(fmt.Sprintf("%s 5 IN SRV 0 50 8080 %s", q, target)))
			m.Extra = append(m.Extra, test.A(fmt.Sprintf("%s 5 IN A 10.0.0.%d", target, i+1)))
		}
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
	kept := host(255) + "." + asked
	if len(kept) != 254 || len(host(256)+"."+asked) != 255 {
		t.Fatalf("the fixture's restored targets are %d and %d characters long", len(kept), len(host(256)+"."+asked))
	}
	askOverTheWire(t, e, test.Case{
		Qname: "_http._tcp." + asked, Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("_http._tcp." + asked + " 5 IN SRV 0 50 8080 " + kept)},
		Extra:  []dns.RR{test.A(kept + " 5 IN A 10.0.0.1")},
	})
}

// In a kubernetes zone that is the root, and in the domain form aliasing it, a rewritten name
// ends in svc. (not svc..).
func TestAliasRootZone(t *testing.T) {
	t.Parallel()
	a := aliaser{envs: []string{"stg"}, sep: "-", zones: []string{"."}, domains: []string{"k8s.example.com."}}
	for qname, want := range map[string]string{
		"stg-api.platform.svc.":                      "api.platform.svc.",
		"_http._tcp.stg-api.platform.svc.":           "_http._tcp.api.platform.svc.",
		"api.platform.stg.k8s.example.com.":          "api.platform.svc.",
		"10-0-0-1.api.platform.stg.k8s.example.com.": "10-0-0-1.api.platform.svc.",
		"stg.k8s.example.com.":                       "svc.",
	} {
		al, ok := a.aliasOf(qname)
		if _, valid := dns.IsDomainName(al.name); !ok || al.name != want || !valid {
			t.Errorf("%s: alias %t, rewritten to %q, want %q", qname, ok, al.name, want)
		}
	}
}
