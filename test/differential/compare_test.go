package differential

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// query is one question, asked of both servers over UDP and over TCP.
type query struct {
	name  string
	qtype uint16
	class uint16 // dns.ClassINET when zero
	edns  bool   // send an OPT record (4096 bytes, DO unset)
}

func (q query) String() string {
	return fmt.Sprintf("%s %s", q.name, dns.TypeToString[q.qtype])
}

// queries covers every kind of name the kubernetes plugin and the stock
// Corefile answer: ClusterIP, headless, ExternalName, endpoint and pod names,
// SRV, PTR, NXDOMAIN, NODATA, the zone apex and upstream names.
func (w *world) queries() []query {
	const ns = "platform.svc.cluster.local."
	var qs []query
	add := func(name string, types ...uint16) {
		for _, t := range types {
			qs = append(qs, query{name: name, qtype: t})
		}
	}
	add("api."+ns, dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeCNAME, dns.TypeMX)
	add("API.Platform.Svc.Cluster.Local.", dns.TypeA) // case is echoed, not folded
	add("_http._tcp.api."+ns, dns.TypeSRV)
	add("_grpc._tcp.api."+ns, dns.TypeSRV)
	add("_nope._tcp.api."+ns, dns.TypeSRV)
	add("10-244-1-10.api."+ns, dns.TypeA) // endpoint name of a ClusterIP Service
	add("db."+ns, dns.TypeA, dns.TypeAAAA, dns.TypeSRV)
	add("db-0.db."+ns, dns.TypeA, dns.TypeAAAA)
	add("_postgres._tcp.db."+ns, dns.TypeSRV)
	add("docs."+ns, dns.TypeA, dns.TypeCNAME, dns.TypeAAAA) // ExternalName, chased upstream
	add("web."+ns, dns.TypeA, dns.TypeSRV)
	add("_https._tcp.web."+ns, dns.TypeSRV)
	add("dual."+ns, dns.TypeA, dns.TypeAAAA)
	add("missing."+ns, dns.TypeA, dns.TypeSRV)           // NXDOMAIN
	add("api.nonexistent.svc.cluster.local.", dns.TypeA) // NXDOMAIN
	add(ns, dns.TypeA)                                   // namespace: NODATA
	add("svc.cluster.local.", dns.TypeA)
	add("cluster.local.", dns.TypeSOA, dns.TypeNS, dns.TypeA)
	add("ns.dns.cluster.local.", dns.TypeA)
	add("dns-version.cluster.local.", dns.TypeTXT)
	add("10-244-1-10.platform.pod.cluster.local.", dns.TypeA) // pods insecure
	add("kubernetes.default.svc.cluster.local.", dns.TypeA)
	add(reverse(w.demo.APIClusterIP), dns.TypePTR)
	add(reverse(w.dualIPs[0]), dns.TypePTR)
	add(reverse("10.244.1.20"), dns.TypePTR) // headless endpoint
	add(reverse("192.0.2.1"), dns.TypePTR)   // falls through to forward
	add(reverse("10.99.99.99"), dns.TypePTR) // in the service CIDR, unknown
	add("example.org.", dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeSRV)
	add("www.example.org.", dns.TypeA)
	add("nx.example.org.", dns.TypeA)
	qs = append(qs,
		query{name: "api." + ns, qtype: dns.TypeA, edns: true},
		query{name: "db." + ns, qtype: dns.TypeSRV, edns: true},
		query{name: "example.org.", qtype: dns.TypeA, edns: true},
		query{name: "version.bind.", qtype: dns.TypeTXT, class: dns.ClassCHAOS},
	)
	return qs
}

func reverse(ip string) string {
	name, err := dns.ReverseAddr(ip)
	if err != nil {
		panic(err)
	}
	return name
}

// compare asks every query of a and b over UDP and TCP and returns one line
// per difference.
func compare(t *testing.T, qs []query, a, b server) []string {
	t.Helper()
	if len(qs) < 40 {
		t.Fatalf("only %d queries; the drop-in proof asks at least 40", len(qs))
	}
	var diffs []string
	for _, q := range qs {
		for _, network := range []string{"udp", "tcp"} {
			ra, errA := ask(network, a.addr, q)
			rb, errB := ask(network, b.addr, q)
			if errA != nil || errB != nil {
				diffs = append(diffs, fmt.Sprintf("%s over %s: %s error %v, %s error %v", q, network, a.name, errA, b.name, errB))
				continue
			}
			if na, nb := normalize(ra), normalize(rb); na != nb {
				diffs = append(diffs, fmt.Sprintf("%s over %s differs\n--- %s\n%s\n--- %s\n%s", q, network, a.name, na, b.name, nb))
			}
		}
	}
	return diffs
}

func ask(network, addr string, q query) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(q.name, q.qtype)
	if q.class != 0 {
		m.Question[0].Qclass = q.class
	}
	if q.edns {
		m.SetEdns0(4096, false)
	}
	c := &dns.Client{Net: network, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// normalize renders a reply with the ID zeroed and each section's records
// sorted, so that loadbalance's shuffling does not count as a difference. The
// SOA serial is zeroed too: the kubernetes plugin derives it from the time its
// own informer last saw a change, so two upstream processes started a second
// apart differ there as well.
func normalize(m *dns.Msg) string {
	m = m.Copy()
	m.Id = 0
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if soa, ok := rr.(*dns.SOA); ok {
				soa.Serial = 0
			}
		}
	}
	var b strings.Builder
	b.WriteString(m.MsgHdr.String())
	b.WriteString("\n")
	for _, q := range m.Question {
		b.WriteString(q.String() + "\n")
	}
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		lines := make([]string, 0, len(section))
		for _, rr := range section {
			lines = append(lines, rr.String())
		}
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, "\n") + "\n;\n")
	}
	return b.String()
}
