package envalias

import (
	"errors"
	"slices"
	"strings"

	"github.com/warpdns/warpdns/internal/kubedns"

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

// restored returns res with the question asked and the names under the alias
// restored. res and its records may be the cache's (or another plugin's)
// data, so none of them is changed: the reply is a shallow copy of res, in
// which each record that names the alias is a renamed copy.
func (w *responseRestorer) restored(res *dns.Msg) *dns.Msg {
	m := *res
	if len(res.Question) <= 1 {
		m.Question = []dns.Question{w.question}
	} else {
		m.Question = slices.Clone(res.Question)
		m.Question[0] = w.question
	}
	r := restoring{w: w, records: len(res.Answer) + len(res.Ns) + len(res.Extra)}
	m.Answer = r.section(res.Answer)
	m.Ns = r.section(res.Ns)
	m.Extra = r.section(res.Extra)
	return &m
}

// restoring is the state of one reply's restoration.
type restoring struct {
	w       *responseRestorer
	records int // in the reply
	// The names restored so far, each computed once: an SRV target comes
	// back as the owner of its address record.
	names []restoredName
}

type restoredName struct {
	from, to string // to is empty if the restored name is too long
}

// section returns rrs restored: rrs itself if no record in it names the alias.
func (r *restoring) section(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for i, rr := range rrs {
		restored, ok := r.restore(rr)
		if ok && restored == rr && out == nil {
			continue
		}
		if out == nil {
			out = make([]dns.RR, i, len(rrs))
			copy(out, rrs[:i])
		}
		if ok {
			out = append(out, restored)
		}
	}
	if out == nil {
		return rrs
	}
	return out
}

// restore returns rr with the names in it that point into the aliased
// Service restored: rr itself if there are none, else a copy. ok is false if
// a restored name would be longer than a domain name can be: the asked name
// (ENV- added, or a domain longer than svc.ZONE) can be longer than the one
// answered, and such a record could not exist for the name asked.
func (r *restoring) restore(rr dns.RR) (_ dns.RR, ok bool) {
	h := rr.Header()
	owner, ok := r.name(h.Name)
	if !ok {
		return nil, false
	}
	switch rr := rr.(type) {
	case *dns.A:
		if owner != h.Name {
			c := *rr
			c.Hdr.Name = owner
			return &c, true
		}
	case *dns.AAAA:
		if owner != h.Name {
			c := *rr
			c.Hdr.Name = owner
			return &c, true
		}
	case *dns.SRV:
		target, ok := r.name(rr.Target)
		if !ok {
			return nil, false
		}
		if owner != h.Name || target != rr.Target {
			c := *rr
			c.Hdr.Name, c.Target = owner, target
			return &c, true
		}
	case *dns.CNAME:
		target, ok := r.name(rr.Target)
		if !ok {
			return nil, false
		}
		if owner != h.Name || target != rr.Target {
			c := *rr
			c.Hdr.Name, c.Target = owner, target
			return &c, true
		}
	case *dns.SOA:
		// A negative answer's SOA is the apex of the zone the question is
		// in; in the domain form that is ENV.DOMAIN, not ZONE.
		ns, mbox := rr.Ns, rr.Mbox
		if r.w.askedZone != "" {
			owner, ns, mbox = r.zoneName(owner), r.zoneName(ns), r.zoneName(mbox)
		}
		if owner != h.Name || ns != rr.Ns || mbox != rr.Mbox {
			c := *rr
			c.Hdr.Name, c.Ns, c.Mbox = owner, ns, mbox
			return &c, true
		}
	default:
		if owner != h.Name {
			c := dns.Copy(rr)
			c.Header().Name = owner
			return c, true
		}
	}
	return rr, true
}

// name maps a name at or below the target back to the asked spelling; ok is
// false if that spelling is not a valid domain name.
func (r *restoring) name(n string) (string, bool) {
	// Exact equality first: the next plugin usually echoes the name it was sent.
	if n == r.w.name || strings.EqualFold(n, r.w.name) {
		return r.w.question.Name, true
	}
	prefix, ok := kubedns.CutZone(n, r.w.target)
	if !ok {
		return n, true
	}
	for _, rn := range r.names {
		if rn.from == n {
			return rn.to, rn.to != ""
		}
	}
	restored := prefix + r.w.asked
	if !validName(restored) {
		restored = ""
	}
	if r.names == nil {
		r.names = make([]restoredName, 0, r.records)
	}
	r.names = append(r.names, restoredName{n, restored})
	return restored, restored != ""
}

// zoneName maps a name at or below ZONE to ENV.DOMAIN (the domain form).
// The apex and the SOA's names are short: they always fit.
func (r *restoring) zoneName(n string) string {
	if prefix, ok := kubedns.CutZone(n, r.w.zone); ok && validName(prefix+r.w.askedZone) {
		return prefix + r.w.askedZone
	}
	return n
}

// validName reports whether n, a fully qualified name, fits in 255 octets.
func validName(n string) bool {
	if len(n) <= 254 { // escapes only ever make the text longer than the name
		return true
	}
	_, ok := dns.IsDomainName(n)
	return ok
}
