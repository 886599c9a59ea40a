package headlessonly

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	api "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// sameAsStock asks h and stock r, and fails unless both give the same reply.
func sameAsStock(t *testing.T, h *HeadlessOnly, stock *HeadlessOnly, r *dns.Msg) {
	t.Helper()
	_, got := ask(h, r, true)
	if _, want := ask(stock.k, r, true); got != want {
		t.Errorf("%s %s opcode %s: %s\nstock headless: %s", dns.TypeToString[r.Question[0].Qtype], r.Question[0].Name, dns.OpcodeToString[r.Opcode], got, want)
	}
}

// An answer with a name outside the zone in its records' data depends on more than the kubernetes
// plugin's cache (what the target's address lookup finds, or fails to find: the additional
// section is then empty): it is not kept. The kubernetes plugin v1.15.0 itself leaves CNAME
// targets out of SRV answers (Kubernetes.Services) and names its NS hosts in the zone, so these
// answers are handed to the cache directly.
func TestAnswerCacheNamesInRecordData(t *testing.T) {
	t.Parallel()
	const owner = "web.testns.svc.cluster.local."
	for _, rr := range []dns.RR{
		test.SRV(owner + " 5 IN SRV 0 100 80 db.example.net."),
		test.MX(owner + " 5 IN MX 10 mail.example.net."),
		test.NS(owner + " 5 IN NS ns.example.net."),
		test.CNAME(owner + " 5 IN CNAME api.testns.svc.cluster.local."),
		test.PTR(owner + " 5 IN PTR db.example.net."),
	} {
		conn := newCluster(false)
		h := newPlugin(conn)
		qtype := rr.Header().Rrtype
		r := new(dns.Msg).SetQuestion(owner, qtype)
		m := new(dns.Msg).SetReply(r)
		m.Authoritative, m.Answer = true, []dns.RR{rr}
		h.answers.put(r, m, h.answers.begin(conn), h.k)
		if got := h.answers.get(r, conn); got != nil {
			t.Errorf("%s: kept, and served from the cache:\n%v", dns.TypeToString[qtype], got)
		}
	}
	// The same answers within the zone are kept.
	conn := newCluster(false)
	h := newPlugin(conn)
	r := new(dns.Msg).SetQuestion(owner, dns.TypeSRV)
	m := new(dns.Msg).SetReply(r)
	m.Answer = []dns.RR{test.SRV(owner + " 5 IN SRV 0 100 80 10-1-0-1.web.testns.svc.cluster.local.")}
	h.answers.put(r, m, h.answers.begin(conn), h.k)
	if h.answers.get(r, conn) == nil {
		t.Error("an SRV answer with its target in the zone was not kept")
	}
}

// Only QUERY is answered from the cache, as the cache plugin does: a NOTIFY for a name just
// asked gets the kubernetes plugin's reply to a NOTIFY, without RD and CD (dns.Msg.SetReply).
func TestAnswerCacheOpcode(t *testing.T) {
	t.Parallel()
	h, stock := newPlugin(newCluster(false)), newPlugin(newCluster(true))
	for _, opcode := range []int{dns.OpcodeQuery, dns.OpcodeNotify, dns.OpcodeQuery, dns.OpcodeUpdate, dns.OpcodeStatus} {
		r := new(dns.Msg).SetQuestion("web.testns.svc.cluster.local.", dns.TypeA)
		r.Opcode, r.RecursionDesired, r.CheckingDisabled = opcode, true, true
		sameAsStock(t, h, stock, r)
	}
}

// randomCase spells name with each letter's case chosen by rng, as a resolver using 0x20 does.
func randomCase(rng *rand.Rand, name string) string {
	b := []byte(name)
	for i, c := range b {
		if 'a' <= c && c <= 'z' && rng.IntN(2) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// Every spelling of a name is one entry, and answered from it: a client asking case variants
// neither grows the cache nor makes every query a miss. Each reply spells the names as the
// kubernetes plugin spells them for that spelling (SRV targets and their owners carry the zone
// as asked).
func TestAnswerCacheCaseVariants(t *testing.T) {
	t.Parallel()
	conn := newCluster(false)
	h, stock := newPlugin(conn), newPlugin(newCluster(true))
	rng := rand.New(rand.NewPCG(1, 2))
	questions := []struct {
		name  string
		qtype uint16
	}{
		{"_http._tcp.big.testns.svc.cluster.local.", dns.TypeSRV},
		{"big.testns.svc.cluster.local.", dns.TypeA},
		{"dual.testns.svc.cluster.local.", dns.TypeAAAA},
		{"cluster.local.", dns.TypeSOA},
		{"dns-version.cluster.local.", dns.TypeTXT},
		{"10-1-0-2.web.testns.svc.cluster.local.", dns.TypeA},
	}
	for i := range 64 {
		for _, q := range questions {
			name := randomCase(rng, q.name)
			switch i {
			case 62:
				name = q.name
			case 63:
				name = strings.ToUpper(q.name)
			}
			sameAsStock(t, h, stock, new(dns.Msg).SetQuestion(name, q.qtype))
		}
		if i == 0 {
			conn.svcLookups.Store(0)
		}
	}
	if got := len(h.answers.entries); got != len(questions) {
		t.Errorf("%d entries for %d questions in 64 spellings each", got, len(questions))
	}
	if n := conn.svcLookups.Load(); n > 0 {
		t.Errorf("the kubernetes plugin looked Services up %d times after the first spelling of each question", n)
	}
}

// manyBigServices is a cluster of n ClusterIP Services with 250 ready endpoints each.
func manyBigServices(n int) *fakeConn {
	c := &fakeConn{modified: 3}
	for s := range n {
		name := fmt.Sprintf("big%d", s)
		c.svcs = append(c.svcs, service(name, "testns", api.ServiceTypeClusterIP, fmt.Sprintf("10.96.%d.%d", s/250, s%250+1)))
		for slice := range 3 {
			var eps []discovery.Endpoint
			for i := slice * 100; i < min(250, (slice+1)*100); i++ {
				eps = append(eps, endpoint(yes, "", fmt.Sprintf("10.%d.%d.%d", 100+s/250, s%250, i)))
			}
			c.eps = append(c.eps, endpointSlice(fmt.Sprintf("%s-%d", name, slice), name, "testns", eps...))
		}
	}
	return c
}

// heapInUse is the heap's live bytes after a collection.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The answers kept take at most the README's 4 MiB of heap, however many there are: here 300
// answers of 250 A records (about 7 MB, were all of them kept). Not parallel: it reads the heap.
func TestAnswerCacheHeapBound(t *testing.T) {
	const bound = 4 << 20 // README.md, "Answer cache"
	conn := manyBigServices(300)
	h := newPlugin(conn)
	before := heapInUse()
	for i := range conn.svcs {
		if msg, _ := ask(h, new(dns.Msg).SetQuestion(conn.svcs[i].Name+".testns.svc.cluster.local.", dns.TypeA), false); msg == nil || len(msg.Answer) != 250 {
			t.Fatalf("%s: %v", conn.svcs[i].Name, msg)
		}
	}
	grown := int64(heapInUse()) - int64(before)
	t.Logf("the heap grew by %.1f MiB", float64(grown)/(1<<20))
	if grown > bound {
		t.Errorf("the heap grew by %.1f MiB, more than the bound of %.0f MiB", float64(grown)/(1<<20), float64(bound)/(1<<20))
	}
	runtime.KeepAlive(h)
}

// The first query after a change drops every kept answer, as the README says, whether or not it
// keeps one itself.
func TestAnswerCacheDropsOnChange(t *testing.T) {
	t.Parallel()
	conn := newCluster(false)
	h := newPlugin(conn)
	ask(h, new(dns.Msg).SetQuestion("web.testns.svc.cluster.local.", dns.TypeA), false)
	if n := len(h.answers.entries); n != 1 {
		t.Fatalf("%d answers kept, want 1", n)
	}
	atomic.StoreInt64(&conn.modified, 4)
	ask(h, new(dns.Msg).SetQuestion("nope.testns.svc.cluster.local.", dns.TypeA), false) // NXDOMAIN: not kept
	if n := len(h.answers.entries); n != 0 {
		t.Errorf("after a change and a query: %d answers kept, want none", n)
	}
}
