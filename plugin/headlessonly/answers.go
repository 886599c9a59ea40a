package headlessonly

import (
	"context"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/kubernetes"
	"github.com/warpdns/warpdns/internal/kubedns"

	"github.com/miekg/dns"
)

// answerCacheSize bounds the answers kept: at most a few MB for replies of a few dozen records.
const answerCacheSize = 4096

// answerCache keeps the kubernetes plugin's positive answers on the headless path, for as long
// as its cache has not changed. The plugin stamps every change it makes visible in DNS with the
// time, in seconds (Modified, the zone's SOA serial); an answer is reused only while that stamp
// is the one it was made under, and only if it was made in a later second than the stamp, since
// a second change within the same second leaves the stamp as it is.
type answerCache struct {
	mu      sync.RWMutex
	stamp   stamp                  // what every entry was made under
	entries map[answerKey]*dns.Msg // not to be changed: handed out as copies
}

// answerKey is what the kubernetes plugin's answer depends on: the question as asked. (It does
// not sign, and the server adds the OPT record and truncates after us.)
type answerKey struct {
	name          string
	qtype, qclass uint16
}

// stamp is the kubernetes plugin's record of its last changes.
type stamp struct{ internal, multiCluster int64 }

func stampOf(c kubedns.Controller) stamp {
	return stamp{c.Modified(kubernetes.ModifiedInternal), c.Modified(kubernetes.ModifiedMultiCluster)}
}

// get returns a copy of the answer kept for r, made for r, or nil.
func (c *answerCache) get(r *dns.Msg, conn kubedns.Controller) *dns.Msg {
	q := r.Question[0]
	now := stampOf(conn)
	c.mu.RLock()
	m := c.entries[answerKey{q.Name, q.Qtype, q.Qclass}]
	valid := c.stamp == now
	c.mu.RUnlock()
	if m == nil || !valid {
		return nil
	}
	// The plugins and writers after us own the reply they get, and may change its records (the
	// cache plugin sets their TTLs).
	reply := m.Copy()
	reply.Id, reply.Opcode = r.Id, r.Opcode
	reply.RecursionDesired, reply.CheckingDisabled = r.RecursionDesired, r.CheckingDisabled
	reply.Question = []dns.Question{q}
	return reply
}

// cacheState is what put needs to know from before the answer was made.
type cacheState struct {
	second int64 // the clock, read before stamp
	stamp  stamp
}

func (c *answerCache) begin(conn kubedns.Controller) cacheState {
	return cacheState{second: time.Now().Unix(), stamp: stampOf(conn)}
}

// put keeps m, the kubernetes plugin's answer to r, if it depends on nothing but the plugin's
// cache and that cache has not changed since before m was made (s).
func (c *answerCache) put(r *dns.Msg, m *dns.Msg, s cacheState, k *kubernetes.Kubernetes) {
	// Any change from now on is stamped with a later second than s.stamp.
	if s.second <= s.stamp.internal || s.second <= s.stamp.multiCluster {
		return
	}
	if !reusable(m, k.Zones) || !k.APIConn.HasSynced() || stampOf(k.APIConn) != s.stamp {
		return
	}
	q := r.Question[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stamp != s.stamp || c.entries == nil {
		c.stamp, c.entries = s.stamp, make(map[answerKey]*dns.Msg)
	}
	if len(c.entries) >= answerCacheSize {
		for key := range c.entries { // any one
			delete(c.entries, key)
			break
		}
	}
	c.entries[answerKey{q.Name, q.Qtype, q.Qclass}] = m
}

// reusable reports whether m is a positive answer made from the kubernetes plugin's cache alone:
// an ExternalName Service's CNAME, and the records an upstream lookup adds for it or for an SRV
// target outside the zones, can change without the plugin's cache changing.
func reusable(m *dns.Msg, zones []string) bool {
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		return false
	}
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			if rr.Header().Rrtype == dns.TypeCNAME || !kubedns.InZones(zones, rr.Header().Name) {
				return false
			}
		}
	}
	return true
}

// answerRecorder keeps a copy of the reply the kubernetes plugin writes, and notes whether the
// plugin passed the query on instead.
type answerRecorder struct {
	dns.ResponseWriter
	msg    *dns.Msg
	passed bool
}

// WriteMsg implements dns.ResponseWriter.
func (w *answerRecorder) WriteMsg(m *dns.Msg) error {
	if m != nil {
		w.msg = m.Copy() // the writers after us may change m
	}
	return w.ResponseWriter.WriteMsg(m)
}

// passOn is the kubernetes plugin's Next as our copy of the plugin calls it (fallthrough): what
// the next plugins write is theirs, not the kubernetes plugin's answer.
type passOn struct{ next plugin.Handler }

// ServeDNS implements the plugin.Handler interface.
func (p passOn) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if rec, ok := w.(*answerRecorder); ok {
		rec.passed = true
		w = rec.ResponseWriter
	}
	return plugin.NextOrFailure("kubernetes", p.next, ctx, w, r)
}

// Name implements the plugin.Handler interface.
func (p passOn) Name() string {
	if p.next == nil {
		return ""
	}
	return p.next.Name()
}
