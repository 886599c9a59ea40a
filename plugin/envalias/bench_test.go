package envalias

import (
	"context"
	"fmt"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// The hot path's parts, for `make bench` (bench/): recognizing an alias in
// a query name, and putting the asked name back into a reply.

func BenchmarkParseAlias(b *testing.B) {
	benchmarkParse(b, "stg-api.platform.svc.cluster.local.", true)
}

func BenchmarkParseAliasSRV(b *testing.B) {
	benchmarkParse(b, "_http._tcp.stg-api.platform.svc.cluster.local.", true)
}

// BenchmarkParseNotAlias is what every other query of the server block pays.
func BenchmarkParseNotAlias(b *testing.B) {
	benchmarkParse(b, "api.platform.svc.cluster.local.", false)
}

func BenchmarkParseDomainForm(b *testing.B) {
	benchmarkParse(b, "api.platform.stg.k8s.example.com.", true)
}

func benchmarkParse(b *testing.B, qname string, want bool) {
	a := newEnvalias(nil).aliaser
	if _, ok := a.aliasOf(qname); ok != want {
		b.Fatalf("parse(%s) = %t, want %t", qname, ok, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		a.aliasOf(qname)
	}
}

// BenchmarkRestoreA restores a reply of 10 A records (the VPC path's answer
// for a Service with 10 ready endpoints).
func BenchmarkRestoreA(b *testing.B) {
	benchmarkRestore(b, "stg-api.platform.svc.cluster.local.", dns.TypeA, 10)
}

// BenchmarkRestoreSRV restores 10 SRV records and their 10 A records in the
// additional section: 30 names, all under the alias.
func BenchmarkRestoreSRV(b *testing.B) {
	benchmarkRestore(b, "_http._tcp.stg-api.platform.svc.cluster.local.", dns.TypeSRV, 10)
}

// benchmarkRestore restores the reply the kubernetes plugin gives for a
// Service with n ready endpoints.
func benchmarkRestore(b *testing.B, qname string, qtype uint16, n int) {
	al, ok := newEnvalias(nil).aliasOf(qname)
	if !ok {
		b.Fatalf("%s is not an alias", qname)
	}
	reply := new(dns.Msg).SetQuestion(al.name, qtype)
	reply.Response, reply.Authoritative = true, true
	for i := range n {
		ip := fmt.Sprintf("10.244.0.%d", i+1)
		endpoint := fmt.Sprintf("10-244-0-%d.%s", i+1, al.target)
		if qtype == dns.TypeSRV {
			reply.Answer = append(reply.Answer, test.SRV(fmt.Sprintf("%s 5 IN SRV 0 10 8080 %s", al.name, endpoint)))
			reply.Extra = append(reply.Extra, test.A(fmt.Sprintf("%s 5 IN A %s", endpoint, ip)))
		} else {
			reply.Answer = append(reply.Answer, test.A(fmt.Sprintf("%s 5 IN A %s", al.name, ip)))
		}
	}
	reply.SetEdns0(1232, false)
	q := dns.Question{Name: qname, Qtype: qtype, Qclass: dns.ClassINET}
	w := &responseRestorer{ResponseWriter: &test.ResponseWriter{}, question: q, alias: al}

	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteMsg(reply); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServeDNSAliased(b *testing.B) {
	benchmarkServeDNS(b, "_http._tcp.stg-api.platform.svc.cluster.local.")
}

func BenchmarkServeDNSPassThrough(b *testing.B) {
	benchmarkServeDNS(b, "_http._tcp.api.platform.svc.cluster.local.")
}

func benchmarkServeDNS(b *testing.B, qname string) {
	// The next plugin writes one prepared reply, so that only envalias' work is measured.
	req := new(dns.Msg).SetQuestion(qname, dns.TypeSRV)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	newKubeFake("cluster.local.").ServeDNS(context.TODO(), rec, req)
	reply := rec.Msg
	next := plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, _ *dns.Msg) (int, error) {
		return dns.RcodeSuccess, w.WriteMsg(reply)
	})
	e := newEnvalias(next)
	w := &test.ResponseWriter{}
	ctx := context.TODO()

	b.ReportAllocs()
	for b.Loop() {
		e.ServeDNS(ctx, w, req)
	}
}
