package headlessonly

import (
	"context"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// The hot path's parts, for `make bench` (bench/): deciding whether a query
// is ours, presenting a Service as headless, and the SRV answer built from
// that view (the A answer is BenchmarkServeDNSHeadless).

// BenchmarkSelected: a query on the VPC listener (ports 5353) that we serve.
func BenchmarkSelected(b *testing.B) {
	h := newPlugin(newCluster(false))
	h.ports = []uint16{5353}
	r := new(dns.Msg).SetQuestion("web.testns.svc.cluster.local.", dns.TypeA)
	w := &addrWriter{local: &net.UDPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 5353}}
	if !h.selected(w, r) {
		b.Fatal("not selected")
	}
	b.ReportAllocs()
	for b.Loop() {
		h.selected(w, r)
	}
}

// BenchmarkSvcIndexHeadless is the view one query gets of a ClusterIP
// Service: looked up, its endpoints checked for readiness, copied headless.
func BenchmarkSvcIndexHeadless(b *testing.B) {
	conn := newCluster(false)
	h := newPlugin(conn)
	if svcs := (&headlessConn{Controller: conn, h: h}).SvcIndex("web.testns"); len(svcs) != 1 || !svcs[0].Headless() {
		b.Fatalf("SvcIndex: %v", svcs)
	}
	b.ReportAllocs()
	for b.Loop() {
		c := headlessConn{Controller: conn, h: h}
		c.SvcIndex("web.testns")
	}
}

func BenchmarkServeDNSHeadless(b *testing.B) {
	benchmarkServeDNS(b, newPlugin(newCluster(false)), &test.ResponseWriter{}, "web.testns.svc.cluster.local.", dns.TypeA)
}

// BenchmarkServeDNSStock is the same query answered by the kubernetes plugin alone.
func BenchmarkServeDNSStock(b *testing.B) {
	benchmarkServeDNS(b, newKubernetes(newCluster(false)), &test.ResponseWriter{}, "web.testns.svc.cluster.local.", dns.TypeA)
}

// BenchmarkServeDNSStockHeadless is the same query for a headless Service, the answer we copy.
func BenchmarkServeDNSStockHeadless(b *testing.B) {
	benchmarkServeDNS(b, newKubernetes(newCluster(true)), &test.ResponseWriter{}, "web.testns.svc.cluster.local.", dns.TypeA)
}

// BenchmarkServeDNSHeadlessSRV and BenchmarkServeDNSStockHeadlessSRV: the
// SRV answer (targets and their A records) through headlessonly, and stock
// kubernetes' for the same Service created headless.
func BenchmarkServeDNSHeadlessSRV(b *testing.B) {
	benchmarkServeDNS(b, newPlugin(newCluster(false)), &test.ResponseWriter{}, "_http._tcp.web.testns.svc.cluster.local.", dns.TypeSRV)
}

// BenchmarkServeDNSHeadlessSRVUncached: the same, made by the kubernetes plugin every time (an
// answer made within the second of the cache's last change is not kept).
func BenchmarkServeDNSHeadlessSRVUncached(b *testing.B) {
	conn := newCluster(false)
	conn.modified = 1 << 62
	benchmarkServeDNS(b, newPlugin(conn), &test.ResponseWriter{}, "_http._tcp.web.testns.svc.cluster.local.", dns.TypeSRV)
}

// BenchmarkServeDNSHeadlessUncached: the A answer made by the kubernetes plugin every time, the
// path a query takes when the answer cache cannot help.
func BenchmarkServeDNSHeadlessUncached(b *testing.B) {
	conn := newCluster(false)
	conn.modified = 1 << 62
	benchmarkServeDNS(b, newPlugin(conn), &test.ResponseWriter{}, "web.testns.svc.cluster.local.", dns.TypeA)
}

// BenchmarkServeDNSHeadlessRandomCase and BenchmarkServeDNSHeadlessSRVRandomCase: the A and SRV
// answers asked in 1024 spellings of random case (as resolvers using 0x20 ask), in turn: one
// entry of the answer cache, respelled for each (against BenchmarkServeDNSHeadlessUncached and
// BenchmarkServeDNSHeadlessSRVUncached, the issue-23 target: no slower than 0.95x).
func BenchmarkServeDNSHeadlessRandomCase(b *testing.B) {
	benchmarkRandomCase(b, "web.testns.svc.cluster.local.", dns.TypeA)
}

func BenchmarkServeDNSHeadlessSRVRandomCase(b *testing.B) {
	benchmarkRandomCase(b, "_http._tcp.web.testns.svc.cluster.local.", dns.TypeSRV)
}

func benchmarkRandomCase(b *testing.B, name string, qtype uint16) {
	h := newPlugin(newCluster(false))
	rng := rand.New(rand.NewPCG(1, 2))
	queries := make([]*dns.Msg, 1024)
	for i := range queries {
		queries[i] = new(dns.Msg).SetQuestion(randomCase(rng, name), qtype)
	}
	w, ctx := &test.ResponseWriter{}, context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.ServeDNS(ctx, w, queries[i%len(queries)])
		i++
	}
}

func BenchmarkServeDNSStockHeadlessSRV(b *testing.B) {
	benchmarkServeDNS(b, newKubernetes(newCluster(true)), &test.ResponseWriter{}, "_http._tcp.web.testns.svc.cluster.local.", dns.TypeSRV)
}

// BenchmarkServeDNSNotSelected measures what we add to the queries of the other listener.
func BenchmarkServeDNSNotSelected(b *testing.B) {
	h := newPlugin(newCluster(false))
	h.ports = []uint16{5353}
	h.Next = test.HandlerFunc(func(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) { return 0, nil })
	benchmarkServeDNS(b, h, &addrWriter{local: &net.UDPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 53}}, "web.testns.svc.cluster.local.", dns.TypeA)
}

func benchmarkServeDNS(b *testing.B, h plugin.Handler, w dns.ResponseWriter, name string, qtype uint16) {
	r := new(dns.Msg).SetQuestion(name, qtype)
	ctx := context.Background()
	if rcode, err := h.ServeDNS(ctx, w, r); rcode != dns.RcodeSuccess || err != nil {
		b.Fatalf("rcode %d, %v", rcode, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeDNS(ctx, w, r)
	}
}
