package headlessonly

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/kubernetes"
	"github.com/warpdns/warpdns/internal/kubedns"

	"github.com/miekg/dns"
)

// answerCacheBytes bounds the heap the kept answers take, as answerSize counts it (an upper bound,
// see TestAnswerSizeIsAnUpperBound): room for about 1,800 answers of 10 A records, or 900 SRV
// answers of 10 targets with their addresses.
const answerCacheBytes = 4 << 20

// answerCache keeps the kubernetes plugin's positive answers on the headless path, for as long
// as its cache has not changed. The plugin stamps every change it makes visible in DNS with the
// time, in seconds (Modified, the zone's SOA serial); an answer is reused only while that stamp
// is the one it was made under, and only if it was made in a later second than the stamp, since
// a second change within the same second leaves the stamp as it is.
//
// Like the cache plugin (plugin/cache: its key lower-cases the name, and its reply takes the
// question from the request), it answers every spelling of a name from one entry; unlike it, the
// reply's other names are spelled as the kubernetes plugin spells them for the question as asked
// (see respell), so that a reply from the cache is the one the plugin would have given.
type answerCache struct {
	mu      sync.RWMutex
	stamp   stamp // what every entry was made under
	entries map[answerKey]*entry
	bytes   int // the entries' sizes, summed: at most maxBytes
	// maxBytes is the bound; 0: answerCacheBytes. Tests make it smaller.
	maxBytes int
}

// answerKey is what the kubernetes plugin's answer depends on: the question, its name in lower
// case (ASCII only: DNS compares names so, RFC 4343). The plugin does not sign, and the server
// adds the OPT record and truncates after us.
type answerKey struct {
	name          string
	qtype, qclass uint16
}

func keyOf(q dns.Question) answerKey { return answerKey{lowerASCII(q.Name), q.Qtype, q.Qclass} }

// entry is a kept reply: the kubernetes plugin's reply to the question asked in lower case,
// every name in it lower case.
type entry struct {
	msg  *dns.Msg // never changed: handed out as copies
	zone int      // the length of the kubernetes zone the question is in
	size int      // answerSize
}

// stamp is the kubernetes plugin's record of its last changes.
type stamp struct{ internal, multiCluster int64 }

func stampOf(c kubedns.Controller) stamp {
	return stamp{c.Modified(kubernetes.ModifiedInternal), c.Modified(kubernetes.ModifiedMultiCluster)}
}

// get returns a copy of the answer kept for r, made for r, or nil. The first query after a change
// drops every entry.
func (c *answerCache) get(r *dns.Msg, conn kubedns.Controller) *dns.Msg {
	// As the cache plugin (cache/handler.go), only QUERY is answered from the cache: any other
	// opcode goes to the kubernetes plugin, whose reply to it has no RD or CD (dns.Msg.SetReply).
	if r.Opcode != dns.OpcodeQuery {
		return nil
	}
	q := r.Question[0]
	key := keyOf(q)
	now := stampOf(conn)
	c.mu.RLock()
	a, current := c.entries[key], c.stamp == now
	c.mu.RUnlock()
	if !current {
		c.drop(now)
		return nil
	}
	if a == nil {
		return nil
	}
	// The plugins and writers after us own the reply they get, and may change its records (the
	// cache plugin sets their TTLs).
	reply := a.msg.Copy()
	reply.Id, reply.RecursionDesired, reply.CheckingDisabled = r.Id, r.RecursionDesired, r.CheckingDisabled
	reply.Question = []dns.Question{q}
	respell(reply, key.name, q.Name, a.zone)
	return reply
}

// drop empties the cache if its entries were made under another stamp than now.
func (c *answerCache) drop(now stamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stamp != now {
		c.stamp, c.entries, c.bytes = now, nil, 0
	}
}

// cacheState is what put needs to know from before the answer was made.
type cacheState struct {
	second int64 // the clock, read before stamp
	stamp  stamp
}

func (c *answerCache) begin(conn kubedns.Controller) cacheState {
	return cacheState{second: time.Now().Unix(), stamp: stampOf(conn)}
}

// put keeps m, the kubernetes plugin's answer to r (a copy of it that put may change), if it
// depends on nothing but the plugin's cache and that cache has not changed since before m was
// made (s). When the kept answers would take more than the bound, arbitrary ones make room.
func (c *answerCache) put(r *dns.Msg, m *dns.Msg, s cacheState, k *kubernetes.Kubernetes) {
	// Any change from now on is stamped with a later second than s.stamp.
	if r.Opcode != dns.OpcodeQuery || s.second <= s.stamp.internal || s.second <= s.stamp.multiCluster {
		return
	}
	q := r.Question[0]
	zone := kubedns.Zone(k.Zones, q.Name)
	if zone == "" || !reusable(m, q.Name, zone) || !k.APIConn.HasSynced() || stampOf(k.APIConn) != s.stamp {
		return
	}
	key := keyOf(q)
	lowerNames(m, key.name)
	m.Question = []dns.Question{{Name: key.name, Qtype: q.Qtype, Qclass: q.Qclass}}
	a := &entry{msg: m, zone: len(zone), size: answerSize(key, m)}
	limit := cmp.Or(c.maxBytes, answerCacheBytes)
	if a.size > limit {
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stamp != s.stamp || c.entries == nil {
		c.stamp, c.entries, c.bytes = s.stamp, make(map[answerKey]*entry), 0
	}
	if old, ok := c.entries[key]; ok { // two misses of the same question at once
		delete(c.entries, key)
		c.bytes -= old.size
	}
	for other, o := range c.entries { // any ones
		if c.bytes+a.size <= limit {
			break
		}
		delete(c.entries, other)
		c.bytes -= o.size
	}
	c.entries[key] = a
	c.bytes += a.size
}

// reusable reports whether m, the answer to a question for qname in the kubernetes zone zone, is
// a positive answer made from the kubernetes plugin's cache alone, spelled as respell can spell it
// for another spelling of qname. Every name in every record counts (owners, SRV targets, NS and
// MX hosts, the SOA's names): the answer's owners must be qname as asked, every other name must
// be in zone, for a name elsewhere (an ExternalName Service's target, an SRV target outside the
// zone, whose addresses an upstream lookup adds or failed to add) can change without the
// plugin's cache changing. Those other names must also be spelled as the plugin spells them: in
// lower case, but for the zone as qname spells it (the plugin takes the zone from the question:
// kubernetes.ServeDNS). An SRV target can be qname itself, spelled so.
func reusable(m *dns.Msg, qname, zone string) bool {
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 || m.Truncated {
		return false
	}
	askedZone := qname[len(qname)-len(zone):]
	return eachName(m, func(n *string, ownsAnswer bool) bool {
		if ownsAnswer {
			return *n == qname
		}
		prefix, ok := kubedns.CutZone(*n, zone)
		return ok && (*n)[len(prefix):] == askedZone && lowerASCII(prefix) == prefix
	})
}

// lowerNames lower-cases every name in m, a reusable answer to a question for qname: it is then
// the answer to the question for lower, qname in lower case.
func lowerNames(m *dns.Msg, lower string) {
	eachName(m, func(n *string, ownsAnswer bool) bool {
		if ownsAnswer {
			*n = lower // one string for the many records the question's name owns
		} else {
			*n = lowerASCII(*n)
		}
		return true
	})
}

// respell spells the names of m, a copy of a kept answer to the question for lower (lower case),
// as the kubernetes plugin spells them for the question for asked: the answer's owners as asked,
// and in every other name the zone as asked spells it. zone is the zone's length.
func respell(m *dns.Msg, lower, asked string, zone int) {
	if asked == lower {
		return
	}
	askedZone := asked[len(asked)-zone:]
	if askedZone == lower[len(lower)-zone:] {
		askedZone = "" // only the owners change
	}
	eachName(m, func(n *string, ownsAnswer bool) bool {
		switch {
		case ownsAnswer:
			*n = asked
		case askedZone != "": // every name is in the zone (reusable)
			*n = (*n)[:len(*n)-zone] + askedZone
		}
		return true
	})
}

// eachName calls f with every name in m, until f returns false; ownsAnswer tells the owners of
// the answer section's records. It reports whether f returned true for each, and every record's
// type is one the kubernetes plugin answers from its cache alone (see dataNames).
func eachName(m *dns.Msg, f func(name *string, ownsAnswer bool) bool) bool {
	for i, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			if !f(&rr.Header().Name, i == 0) || !dataNames(rr, func(n *string) bool { return f(n, false) }) {
				return false
			}
		}
	}
	return true
}

// dataNames calls f with every name in rr's data, until f returns false. It reports whether f
// returned true for each, and rr's type is one the kubernetes plugin answers from its cache alone
// (and every name of which is known here): CNAME is not, since an ExternalName's target and the
// records an upstream lookup adds for it can change without that cache changing.
func dataNames(rr dns.RR, f func(name *string) bool) bool {
	switch rr := rr.(type) {
	case *dns.A, *dns.AAAA, *dns.TXT:
		return true
	case *dns.SRV:
		return f(&rr.Target)
	case *dns.NS:
		return f(&rr.Ns)
	case *dns.MX:
		return f(&rr.Mx)
	case *dns.SOA:
		return f(&rr.Ns) && f(&rr.Mbox)
	}
	return false
}

// Per kept answer and per record, what the heap holds besides names and data: the map entry, the
// key and answer structs, the dns.Msg (entryOverhead); the interface in its section's slice and
// the record's struct with its header, allocated in Go's size classes (recordOverhead).
const entryOverhead, recordOverhead = 512, 128

// answerSize estimates the heap bytes a kept answer holds: its overheads, and per record its
// length on the wire, which is about the bytes of its names and data.
func answerSize(key answerKey, m *dns.Msg) int {
	n := entryOverhead + len(key.name)
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			n += recordOverhead + dns.Len(rr)
		}
	}
	return n
}

// lowerASCII is s with A-Z in lower case: what DNS compares names without (RFC 4343), and nothing
// else, so that no two names that differ get the same key (strings.ToLower maps invalid UTF-8 to
// one replacement rune).
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
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
