package headlessonly

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const soa = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 3 7200 1800 86400 5"

var headlessCases = []test.Case{
	// Two slices, one address in both, one not ready: each ready address once.
	answer("web.testns.svc.cluster.local.", dns.TypeA, "10.1.0.1", "10.1.0.2", "10.1.0.3"),
	// IPv4-only Service: NODATA for AAAA.
	{Qname: "web.testns.svc.cluster.local.", Qtype: dns.TypeAAAA, Ns: []dns.RR{test.SOA(soa)}},
	// Dual-stack: each family from its own slice.
	answer("dual.testns.svc.cluster.local.", dns.TypeA, "10.2.0.1"),
	answer("dual.testns.svc.cluster.local.", dns.TypeAAAA, "fd00:10::1"),
	// NodePort and LoadBalancer Services have a ClusterIP too.
	answer("np.testns.svc.cluster.local.", dns.TypeA, "10.6.0.1"),
	answer("lb.testns.svc.cluster.local.", dns.TypeA, "10.6.0.2"),
	// SRV carries the endpoint's port (8080, the targetPort), not the Service's 80, and one
	// target per ready endpoint, with its address in the additional section. The weight is
	// what stock computes before dropping the duplicate: 100/4 each.
	{
		Qname: "_http._tcp.web.testns.svc.cluster.local.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{
			test.SRV("_http._tcp.web.testns.svc.cluster.local. 5 IN SRV 0 25 8080 10-1-0-1.web.testns.svc.cluster.local."),
			test.SRV("_http._tcp.web.testns.svc.cluster.local. 5 IN SRV 0 25 8080 10-1-0-2.web.testns.svc.cluster.local."),
			test.SRV("_http._tcp.web.testns.svc.cluster.local. 5 IN SRV 0 25 8080 10-1-0-3.web.testns.svc.cluster.local."),
		},
		Extra: []dns.RR{
			test.A("10-1-0-1.web.testns.svc.cluster.local. 5 IN A 10.1.0.1"),
			test.A("10-1-0-2.web.testns.svc.cluster.local. 5 IN A 10.1.0.2"),
			test.A("10-1-0-3.web.testns.svc.cluster.local. 5 IN A 10.1.0.3"),
		},
	},
	{
		Qname: "_http._tcp.dual.testns.svc.cluster.local.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{
			test.SRV("_http._tcp.dual.testns.svc.cluster.local. 5 IN SRV 0 50 8080 10-2-0-1.dual.testns.svc.cluster.local."),
			test.SRV("_http._tcp.dual.testns.svc.cluster.local. 5 IN SRV 0 50 8080 fd00-10--1.dual.testns.svc.cluster.local."),
		},
		Extra: []dns.RR{
			test.A("10-2-0-1.dual.testns.svc.cluster.local. 5 IN A 10.2.0.1"),
			test.AAAA("fd00-10--1.dual.testns.svc.cluster.local. 5 IN AAAA fd00:10::1"),
		},
	},
	// No such port.
	{Qname: "_grpc._tcp.web.testns.svc.cluster.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
	// The SRV targets resolve.
	answer("10-1-0-3.web.testns.svc.cluster.local.", dns.TypeA, "10.1.0.3"),
	{Qname: "10-1-0-9.web.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
	// No ready endpoint: what stock answers for an empty headless Service.
	{Qname: "empty.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
	{Qname: "noslice.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
	// Every namespace by default.
	answer("web.other.svc.cluster.local.", dns.TypeA, "10.4.0.1"),
	// Untouched: headless, ExternalName, nonexistent, reverse, outside the zone.
	answer("hl.testns.svc.cluster.local.", dns.TypeA, "10.3.0.1"),
	answer("hl-0.hl.testns.svc.cluster.local.", dns.TypeA, "10.3.0.1"),
	{Qname: "ext.testns.svc.cluster.local.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.A("example.org. 300 IN A 192.0.2.10"), // sorted: SortAndCheck sorts the answer
		test.CNAME("ext.testns.svc.cluster.local. 5 IN CNAME example.org."),
	}},
	{Qname: "nope.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
	answer("10.0.96.10.in-addr.arpa.", dns.TypePTR, "web.testns.svc.cluster.local."),
	{Qname: "example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused,
		Answer: []dns.RR{test.TXT("example.org. 0 IN TXT passed")}},
}

// answer is the case of qname and qtype answered with one record of qname per rdata.
func answer(qname string, qtype uint16, rdata ...string) test.Case {
	tc := test.Case{Qname: qname, Qtype: qtype}
	for _, d := range rdata {
		rr, _ := dns.NewRR(qname + " 5 IN " + dns.TypeToString[qtype] + " " + d)
		tc.Answer = append(tc.Answer, rr)
	}
	return tc
}

func TestServeDNS(t *testing.T) {
	t.Parallel()
	conn := newCluster(false)
	h := newPlugin(conn)
	t.Cleanup(func() { // once every case is answered: the cache's objects were never modified
		for _, s := range conn.svcs {
			if s.Name != "hl" && s.Type != "ExternalName" && s.Headless() {
				t.Errorf("cached Service %s/%s was made headless", s.Namespace, s.Name)
			}
		}
	})
	for _, tc := range headlessCases {
		t.Run(dns.TypeToString[tc.Qtype]+" "+tc.Qname, func(t *testing.T) {
			t.Parallel()
			checkCase(t, h, &test.ResponseWriter{}, tc)
		})
	}
}

func checkCase(t *testing.T, h *HeadlessOnly, w dns.ResponseWriter, tc test.Case) {
	t.Helper()
	rec := dnstest.NewRecorder(w)
	if _, err := h.ServeDNS(context.Background(), rec, tc.Msg()); err != nil {
		t.Fatalf("ServeDNS: %v", err)
	}
	if rec.Msg == nil {
		t.Fatal("no reply written")
	}
	if err := test.SortAndCheck(rec.Msg, tc); err != nil {
		t.Errorf("%v\n%v", err, rec.Msg)
	}
}

// TestSameAsStockHeadless checks the design's promise: for every query, our answer is the one a
// stock kubernetes plugin gives when the same Services are headless.
func TestSameAsStockHeadless(t *testing.T) {
	t.Parallel()
	h := newPlugin(newCluster(false))
	stock := newKubernetes(newCluster(true))

	names := []string{
		"web.testns.svc.cluster.local.", "dual.testns.svc.cluster.local.", "big.testns.svc.cluster.local.",
		"empty.testns.svc.cluster.local.", "noslice.testns.svc.cluster.local.", "np.testns.svc.cluster.local.",
		"hl.testns.svc.cluster.local.", "ext.testns.svc.cluster.local.", "web.other.svc.cluster.local.",
		"_http._tcp.web.testns.svc.cluster.local.", "_http._udp.web.testns.svc.cluster.local.",
		"_http._tcp.dual.testns.svc.cluster.local.", "10-1-0-2.web.testns.svc.cluster.local.",
		"fd00-10--1.dual.testns.svc.cluster.local.", "testns.svc.cluster.local.", "cluster.local.",
		"dns-version.cluster.local.", "nope.testns.svc.cluster.local.", "x.y.z.testns.svc.cluster.local.",
	}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeCNAME, dns.TypeMX, dns.TypeNS, dns.TypeSOA, dns.TypeHTTPS, dns.TypeANY}
	for _, name := range names {
		for _, qt := range types {
			r := new(dns.Msg).SetQuestion(name, qt)
			r.SetEdns0(4096, false)
			_, got := ask(h, r, true)
			if _, want := ask(stock, r, true); got != want {
				t.Errorf("%s %s: %s\nstock headless: %s", dns.TypeToString[qt], name, got, want)
			}
		}
	}
}

// ask returns h's reply to a copy of r, and, to compare with another's, the rcode, whether
// ServeDNS failed and the reply as text.
func ask(h plugin.Handler, r *dns.Msg, tcp bool) (*dns.Msg, string) {
	rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: tcp})
	rcode, err := h.ServeDNS(context.Background(), rec, r.Copy())
	return rec.Msg, fmt.Sprintf("rcode %d, failed %t\n%v", rcode, err != nil, rec.Msg)
}

// TestUntouched checks that what we do not serve is answered exactly as without us.
func TestUntouched(t *testing.T) {
	t.Parallel()
	conn := newCluster(false)
	h := newPlugin(conn)
	h.Zones = []string{"."} // as in a ".:53 .:5353" block: reverse zones and other names reach us
	h.namespaces = map[string]string{"testns": "Testfile:2"}
	stock := newKubernetes(conn)

	for _, q := range []test.Case{
		{Qname: "web.other.svc.cluster.local.", Qtype: dns.TypeA}, // namespace not selected
		{Qname: "_http._tcp.web.other.svc.cluster.local.", Qtype: dns.TypeSRV},
		{Qname: "hl.testns.svc.cluster.local.", Qtype: dns.TypeA},
		{Qname: "_http._tcp.hl.testns.svc.cluster.local.", Qtype: dns.TypeSRV},
		{Qname: "ext.testns.svc.cluster.local.", Qtype: dns.TypeA},
		{Qname: "ext.testns.svc.cluster.local.", Qtype: dns.TypeCNAME},
		{Qname: "10-1-0-1.testns.pod.cluster.local.", Qtype: dns.TypeA},
		{Qname: "10.0.96.10.in-addr.arpa.", Qtype: dns.TypePTR},
		{Qname: "1.0.1.10.in-addr.arpa.", Qtype: dns.TypePTR},
		{Qname: "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", Qtype: dns.TypePTR},
		{Qname: "example.org.", Qtype: dns.TypeA},
	} {
		r := q.Msg()
		_, got := ask(h, r, false)
		if _, want := ask(stock, r, false); got != want {
			t.Errorf("%s %s: %s\nstock: %s", dns.TypeToString[q.Qtype], q.Qname, got, want)
		}
	}
}

// TestOptions: which queries each option of the stanza answers headless-style, and how.
func TestOptions(t *testing.T) {
	t.Parallel()
	clusterIP := answer("web.testns.svc.cluster.local.", dns.TypeA, "10.96.0.10")
	headless := headlessCases[0]

	udp := func(ip string, port int) net.Addr { return &net.UDPAddr{IP: net.ParseIP(ip), Port: port} }
	tcp := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	vpc := []netip.Prefix{netip.MustParsePrefix("10.240.0.0/16"), netip.MustParsePrefix("fd00:240::/32")}

	for _, c := range []struct {
		name       string
		zones      []string
		namespaces map[string]string
		fallback   bool
		ports      []uint16
		clients    []netip.Prefix
		local      net.Addr
		remote     string // the client's address, test.ResponseWriter's RemoteIP
		tcp        bool
		want       test.Case
	}{
		{name: "no selection", want: headless},
		{name: "other zone", zones: []string{"example.org."}, want: clusterIP},
		{name: "root zone", zones: []string{"."}, want: headless},
		{name: "in-cluster listener", ports: []uint16{5353}, local: udp("10.0.0.5", 53), want: clusterIP},
		{name: "VPC listener", ports: []uint16{5353}, local: udp("10.0.0.5", 5353), want: headless},
		{name: "VPC listener TCP", ports: []uint16{53, 5353}, local: tcp("10.0.0.5", 5353), want: headless},
		{name: "VPC listener dual-stack socket", ports: []uint16{5353}, local: udp("::ffff:10.0.0.5", 5353), want: headless},
		{name: "VPC client", clients: vpc, remote: "10.240.3.4", want: headless},
		{name: "VPC client mapped", clients: vpc, remote: "::ffff:10.240.3.4", want: headless},
		{name: "VPC client IPv6", clients: vpc, remote: "fd00:240::7", tcp: true, want: headless},
		{name: "pod client", clients: vpc, remote: "10.1.0.7", want: clusterIP},
		{name: "both match", ports: []uint16{5353}, clients: vpc, local: udp("10.0.0.5", 5353), remote: "10.240.3.4", want: headless},
		{name: "port only", ports: []uint16{5353}, clients: vpc, local: udp("10.0.0.5", 5353), remote: "10.1.0.7", want: clusterIP},
		{name: "client only", ports: []uint16{5353}, clients: vpc, local: udp("10.0.0.5", 53), remote: "10.240.3.4", want: clusterIP},
		{name: "namespace selected", namespaces: map[string]string{"other": "Testfile:2"}, want: answer("web.other.svc.cluster.local.", dns.TypeA, "10.4.0.1")},
		{name: "namespace not selected", namespaces: map[string]string{"other": "Testfile:2"}, want: clusterIP},
		{name: "fallback no ready endpoint", fallback: true, want: answer("empty.testns.svc.cluster.local.", dns.TypeA, "10.96.0.30")},
		{name: "fallback no slice", fallback: true, want: answer("noslice.testns.svc.cluster.local.", dns.TypeA, "10.96.0.31")},
		{name: "fallback SRV", fallback: true, want: test.Case{
			Qname: "_http._tcp.empty.testns.svc.cluster.local.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("_http._tcp.empty.testns.svc.cluster.local. 5 IN SRV 0 100 80 empty.testns.svc.cluster.local.")},
			Extra:  []dns.RR{test.A("empty.testns.svc.cluster.local. 5 IN A 10.96.0.30")},
		}},
		// Services with a ready endpoint are still answered headless-style.
		{name: "fallback ready endpoint", fallback: true, want: answer("np.testns.svc.cluster.local.", dns.TypeA, "10.6.0.1")},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newPlugin(newCluster(false))
			if c.zones != nil {
				h.Zones = c.zones
			}
			h.namespaces, h.fallback, h.ports, h.clients = c.namespaces, c.fallback, c.ports, c.clients
			checkCase(t, h, &addrWriter{ResponseWriter: test.ResponseWriter{RemoteIP: c.remote, TCP: c.tcp}, local: c.local}, c.want)
		})
	}
}

// TestTruncation checks that the server's scrubbing still applies: over UDP a large answer is
// truncated with TC set, over TCP every address comes back. 250 endpoints over three slices.
func TestTruncation(t *testing.T) {
	t.Parallel()
	h := newPlugin(newCluster(false))
	for _, tcp := range []bool{false, true} {
		r := new(dns.Msg).SetQuestion("big.testns.svc.cluster.local.", dns.TypeA)
		rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: tcp})
		// What core/dnsserver does to every writer before the plugin chain.
		h.ServeDNS(context.Background(), request.NewScrubWriter(r, rec), r)
		switch {
		case tcp && (rec.Msg.Truncated || len(rec.Msg.Answer) != 250):
			t.Errorf("TCP: TC=%t, %d answers, want all 250", rec.Msg.Truncated, len(rec.Msg.Answer))
		case !tcp && (!rec.Msg.Truncated || rec.Msg.Len() > dns.MinMsgSize):
			t.Errorf("UDP: TC=%t, %d bytes, want TC and at most %d", rec.Msg.Truncated, rec.Msg.Len(), dns.MinMsgSize)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	h := newPlugin(newCluster(false))
	const server = "dns://:15353"
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: server})
	for _, q := range []test.Case{
		{Qname: "web.testns.svc.cluster.local.", Qtype: dns.TypeA},
		{Qname: "empty.testns.svc.cluster.local.", Qtype: dns.TypeA},
		{Qname: "noslice.testns.svc.cluster.local.", Qtype: dns.TypeAAAA},
		{Qname: "_http._tcp.empty.testns.svc.cluster.local.", Qtype: dns.TypeSRV},
		{Qname: "empty.testns.svc.cluster.local.", Qtype: dns.TypeMX},
		{Qname: "hl.testns.svc.cluster.local.", Qtype: dns.TypeA}, // headless: not ours, still counted as a request
		{Qname: "10.0.96.10.in-addr.arpa.", Qtype: dns.TypePTR},   // passed on
		{Qname: "example.org.", Qtype: dns.TypeA},                 // passed on
	} {
		h.ServeDNS(ctx, dnstest.NewRecorder(&test.ResponseWriter{}), q.Msg())
	}

	for qtype, want := range map[string]float64{"A": 3, "AAAA": 1, "SRV": 1, "other": 1} {
		if got := value(requestCount.WithLabelValues(server, qtype)); got != want {
			t.Errorf("requests %s = %v, want %v", qtype, got, want)
		}
	}
	if got := value(noReadyCount.WithLabelValues(server)); got != 4 {
		t.Errorf("no ready endpoints = %v, want 4", got)
	}
}

// value reads a counter; prometheus/testutil would need a module go.mod does not list.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestAnswerCache: an answer is reused while the kubernetes plugin's Modified stamp is the one it
// was made under, and only if it was made in a later second than that stamp.
func TestAnswerCache(t *testing.T) {
	t.Parallel()
	conn := newCluster(false)
	h := newPlugin(conn)
	ask := func() []dns.RR {
		t.Helper()
		r := new(dns.Msg).SetQuestion("np.testns.svc.cluster.local.", dns.TypeA)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := h.ServeDNS(context.Background(), rec, r); err != nil || rec.Msg == nil {
			t.Fatalf("no answer: %v", err)
		}
		if rec.Msg.Id != r.Id || rec.Msg.Question[0] != r.Question[0] {
			t.Errorf("reply %d %v made for another question than %d %v", rec.Msg.Id, rec.Msg.Question, r.Id, r.Question)
		}
		return rec.Msg.Answer
	}
	moved := endpointSlice("np-a", "np", "testns", endpoint(yes, "", "10.6.0.9"))

	want := []dns.RR{test.A("np.testns.svc.cluster.local. 5 IN A 10.6.0.1")}
	ask()
	conn.eps = append(slices.Clone(conn.eps), moved) // a change the stamp does not show (a test can)
	if got := ask(); !slices.EqualFunc(got, want, dns.IsDuplicate) {
		t.Errorf("under the same stamp: %v, want the kept answer %v", got, want)
	}
	conn.modified = 4 // the stamp moves: the answer is made again
	if got := ask(); len(got) != 2 {
		t.Errorf("after a change: %v, want both endpoints", got)
	}

	// Made in the same second as the last change: never kept.
	conn.modified = time.Now().Unix() + 1
	before := ask()
	conn.eps = conn.eps[:len(conn.eps)-1]
	if got := ask(); len(got) == len(before) {
		t.Errorf("an answer made within the second of the last change was kept: %v", got)
	}
}

// TestAnswerCacheConcurrent: queries on many goroutines share the answer cache while the stamp
// moves (run with -race).
func TestAnswerCacheConcurrent(t *testing.T) {
	t.Parallel()
	conn := newCluster(false)
	h := newPlugin(conn)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r := new(dns.Msg).SetQuestion([]string{"web.testns.svc.cluster.local.", "np.testns.svc.cluster.local."}[(g+i)%2], dns.TypeA)
				rec := dnstest.NewRecorder(&test.ResponseWriter{})
				h.ServeDNS(context.Background(), rec, r)
				if rec.Msg == nil || len(rec.Msg.Answer) == 0 {
					t.Errorf("no answer for %s", r.Question[0].Name)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			atomic.StoreInt64(&conn.modified, int64(10+i)) // as the informer moves the stamp
		}
	})
	wg.Wait()
}
