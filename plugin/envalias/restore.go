package envalias

import (
	"errors"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// responseRestorer puts the asked name back into a reply for the rewritten
// name, the way rewrite's ResponseReverter does for its rules.
type responseRestorer struct {
	dns.ResponseWriter
	question dns.Question
	alias
}

// WriteMsg restores the question and the names under the alias, then writes the reply.
func (w *responseRestorer) WriteMsg(res *dns.Msg) error {
	if res == nil {
		return errors.New("envalias: response message is nil")
	}
	return w.ResponseWriter.WriteMsg(w.restored(res))
}

// restoredReply is a reply as envalias writes it. The next plugin's reply and
// its records may be the cache's (or another plugin's) data, so none of them
// is changed: the reply is a shallow copy, and each record that names the
// alias is replaced by a copy with the asked name. Those copies come out of
// one allocation per record type and their names out of one buffer, so that
// restoring N records costs a few allocations, not 2N or 3N (a deep copy of
// the reply, then a new string per name).
type restoredReply struct {
	msg       dns.Msg
	questions [1]dns.Question

	w       *responseRestorer
	records int             // in the reply: sizes the name buffer
	names   strings.Builder // the restored names, back to back

	a     recordBatch[dns.A]
	aaaa  recordBatch[dns.AAAA]
	srv   recordBatch[dns.SRV]
	cname recordBatch[dns.CNAME]
}

// restored returns res with the question asked and the names under the alias restored.
func (w *responseRestorer) restored(res *dns.Msg) *dns.Msg {
	r := &restoredReply{msg: *res, w: w}
	if len(res.Question) <= 1 {
		r.questions[0] = w.question
		r.msg.Question = r.questions[:]
	} else {
		r.msg.Question = slices.Clone(res.Question)
		r.msg.Question[0] = w.question
	}
	sections := [...][]dns.RR{res.Answer, res.Ns, res.Extra}
	for _, rrs := range sections {
		r.records += len(rrs)
		for _, rr := range rrs {
			switch rr.(type) {
			case *dns.A:
				r.a.n++
			case *dns.AAAA:
				r.aaaa.n++
			case *dns.SRV:
				r.srv.n++
			case *dns.CNAME:
				r.cname.n++
			}
		}
	}
	r.msg.Answer = r.section(res.Answer)
	r.msg.Ns = r.section(res.Ns)
	r.msg.Extra = r.section(res.Extra)
	return &r.msg
}

// section returns rrs restored: rrs itself if no record in it names the alias.
func (r *restoredReply) section(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for i, rr := range rrs {
		restored := r.restore(rr)
		if restored == rr {
			continue
		}
		if out == nil {
			out = slices.Clone(rrs)
		}
		out[i] = restored
	}
	if out == nil {
		return rrs
	}
	return out
}

// restore returns rr with the names in it that point into the aliased
// Service restored: rr itself if there are none, else a copy.
func (r *restoredReply) restore(rr dns.RR) dns.RR {
	h := rr.Header()
	owner := r.name(h.Name)
	switch rr := rr.(type) {
	case *dns.A:
		if owner != h.Name {
			return renamedCopy(&r.a, rr, owner)
		}
		return rr
	case *dns.AAAA:
		if owner != h.Name {
			return renamedCopy(&r.aaaa, rr, owner)
		}
		return rr
	case *dns.SRV:
		if target := r.name(rr.Target); owner != h.Name || target != rr.Target {
			c := renamedCopy(&r.srv, rr, owner)
			c.Target = target
			return c
		}
		return rr
	case *dns.CNAME:
		if target := r.name(rr.Target); owner != h.Name || target != rr.Target {
			c := renamedCopy(&r.cname, rr, owner)
			c.Target = target
			return c
		}
		return rr
	case *dns.SOA:
		// A negative answer's SOA is the apex of the zone the question is
		// in; in the domain form that is ENV.DOMAIN, not ZONE.
		ns, mbox := rr.Ns, rr.Mbox
		if r.w.askedZone != "" {
			owner, ns, mbox = r.zoneName(owner), r.zoneName(ns), r.zoneName(mbox)
		}
		if owner == h.Name && ns == rr.Ns && mbox == rr.Mbox {
			return rr
		}
		c := *rr
		c.Hdr.Name, c.Ns, c.Mbox = owner, ns, mbox
		return &c
	}
	if owner == h.Name {
		return rr
	}
	c := dns.Copy(rr)
	c.Header().Name = owner
	return c
}

// name maps a name at or below the target back to the asked spelling.
func (r *restoredReply) name(n string) string {
	// Exact equality first: the next plugin usually echoes the name it was sent.
	if n == r.w.name || strings.EqualFold(n, r.w.name) {
		return r.w.question.Name
	}
	if prefix, ok := cutSuffixFold(n, r.w.target); ok {
		return r.join(prefix, r.w.asked)
	}
	return n
}

// zoneName maps a name at or below ZONE to ENV.DOMAIN (the domain form).
func (r *restoredReply) zoneName(n string) string {
	if prefix, ok := cutSuffixFold(n, r.w.zone); ok {
		return r.join(prefix, r.w.askedZone)
	}
	return n
}

// join returns prefix+suffix, written to the reply's name buffer. The buffer
// is sized on first use for one name per record (a short prefix each), and
// what a strings.Builder has handed out stays valid as it grows.
func (r *restoredReply) join(prefix, suffix string) string {
	if r.names.Cap() == 0 {
		r.names.Grow(r.records * (len(suffix) + 16))
	}
	start := r.names.Len()
	r.names.WriteString(prefix)
	r.names.WriteString(suffix)
	return r.names.String()[start:]
}

// recordBatch hands out copies of records of one type from a single
// allocation, made on first use for the n records of that type in a reply.
type recordBatch[T any] struct {
	n   int
	buf []T
}

// renamedCopy returns a copy of rr, taken from b, with the owner name given.
func renamedCopy[T any, P interface {
	*T
	dns.RR
}](b *recordBatch[T], rr P, owner string) P {
	c := P(b.copyOf(rr))
	c.Header().Name = owner
	return c
}

func (b *recordBatch[T]) copyOf(rr *T) *T {
	if b.buf == nil {
		b.buf = make([]T, 0, b.n)
	}
	// Past n, append moves on to a new array; the copies handed out stay valid.
	b.buf = append(b.buf, *rr)
	return &b.buf[len(b.buf)-1]
}
