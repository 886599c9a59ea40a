package headlessonly

import (
	"runtime"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// answerSize is an upper bound of the heap a kept answer takes, so that the bound in bytes holds:
// here 100 answers of 250 A records and 100 of 250 SRV records with their addresses, asked in
// mixed case (the kept copies' names are then strings of their own). Not parallel: it reads the
// heap.
func TestAnswerSizeIsAnUpperBound(t *testing.T) {
	conn := manyBigServices(100)
	h := newPlugin(conn)
	h.answers.maxBytes = 1 << 30
	before := heapInUse()
	for _, s := range conn.svcs {
		for _, q := range []dns.Question{
			{Name: "BIG" + strings.TrimPrefix(s.Name, "big") + ".testns.svc.Cluster.Local.", Qtype: dns.TypeA},
			{Name: "_http._tcp." + s.Name + ".TestNS.svc.cluster.LOCAL.", Qtype: dns.TypeSRV},
		} {
			r := new(dns.Msg).SetQuestion(q.Name, q.Qtype)
			if msg, _ := ask(h, r, true); msg == nil || len(msg.Answer) != 250 {
				t.Fatalf("%s: %v", q.Name, msg)
			}
		}
	}
	grown := int64(heapInUse()) - int64(before)
	if n := len(h.answers.entries); n != 2*len(conn.svcs) {
		t.Fatalf("%d answers kept, want %d", n, 2*len(conn.svcs))
	}
	t.Logf("counted %d bytes, the heap grew by %d (%.2f of the count)", h.answers.bytes, grown, float64(grown)/float64(h.answers.bytes))
	if grown > int64(h.answers.bytes) {
		t.Errorf("the heap grew by %d bytes, more than the %d the cache counted", grown, h.answers.bytes)
	}
	runtime.KeepAlive(h)
}

// However many answers are asked for, the kept ones take at most the bound; one larger than the
// bound is not kept at all.
func TestAnswerCacheBound(t *testing.T) {
	t.Parallel()
	conn := manyBigServices(20)
	h := newPlugin(conn)
	one := func(name string) int {
		return answerSize(answerKey{name: name, qtype: dns.TypeA, qclass: dns.ClassINET}, h.answers.entries[answerKey{name, dns.TypeA, dns.ClassINET}].msg)
	}
	ask(h, new(dns.Msg).SetQuestion("big0.testns.svc.cluster.local.", dns.TypeA), false)
	h.answers.maxBytes = 3*one("big0.testns.svc.cluster.local.") + 100 // room for three
	for i, s := range conn.svcs {
		name := s.Name + ".testns.svc.cluster.local."
		ask(h, new(dns.Msg).SetQuestion(name, dns.TypeA), false)
		_, kept := h.answers.entries[answerKey{name, dns.TypeA, dns.ClassINET}]
		if n := len(h.answers.entries); !kept || n > 3 || h.answers.bytes > h.answers.maxBytes {
			t.Fatalf("after %d answers: the last kept %t, %d kept in %d bytes, want at most 3 in at most %d", i+1, kept, n, h.answers.bytes, h.answers.maxBytes)
		}
	}
	h.answers.maxBytes = 1000
	ask(h, new(dns.Msg).SetQuestion("_http._tcp.big1.testns.svc.cluster.local.", dns.TypeSRV), false)
	if _, ok := h.answers.entries[answerKey{"_http._tcp.big1.testns.svc.cluster.local.", dns.TypeSRV, dns.ClassINET}]; ok {
		t.Error("an answer larger than the bound was kept")
	}
}
