package envalias

import (
	"errors"
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
	// A deep copy, as rewrite's reverter makes: res may be the cache's (or
	// another plugin's) data.
	m := res.Copy()
	if len(m.Question) == 0 {
		m.Question = []dns.Question{w.question}
	} else {
		m.Question[0] = w.question
	}
	m.Answer = w.restore(m.Answer)
	m.Ns = w.restore(m.Ns)
	m.Extra = w.restore(m.Extra)
	return w.ResponseWriter.WriteMsg(m)
}

// restore renames, in place, the names in rrs that point into the aliased
// Service, and leaves out the records in which a restored name would be
// longer than a domain name can be: the asked name (ENV- added, or a domain
// longer than svc.ZONE) can be longer than the one answered, and such a
// record could not exist for the name asked.
func (w *responseRestorer) restore(rrs []dns.RR) []dns.RR {
	kept := rrs[:0]
	for _, rr := range rrs {
		if w.restoreRR(rr) {
			kept = append(kept, rr)
		}
	}
	return kept
}

// restoreRR renames the names in rr, the owner and the names the
// kubernetes plugin puts in record data; ok is false if one is too long.
func (w *responseRestorer) restoreRR(rr dns.RR) (ok bool) {
	rename := func(n *string) {
		if ok {
			*n, ok = w.restoreName(*n)
		}
	}
	ok = true
	rename(&rr.Header().Name)
	switch rr := rr.(type) {
	case *dns.SRV:
		rename(&rr.Target)
	case *dns.CNAME:
		rename(&rr.Target)
	case *dns.NS:
		rename(&rr.Ns)
	case *dns.SOA:
		// A negative answer's SOA is the apex of the zone the question is
		// in; in the domain form that is ENV.DOMAIN, not ZONE.
		if w.askedZone != "" {
			rr.Hdr.Name, rr.Ns, rr.Mbox = w.zoneName(rr.Hdr.Name), w.zoneName(rr.Ns), w.zoneName(rr.Mbox)
		}
	}
	return ok
}

// restoreName maps a name at or below the target back to the asked spelling; ok is
// false if that spelling is not a valid domain name.
func (w *responseRestorer) restoreName(n string) (string, bool) {
	// Exact equality first: the next plugin usually echoes the name it was sent.
	if n == w.name || strings.EqualFold(n, w.name) {
		return w.question.Name, true
	}
	prefix, ok := kubedns.CutZone(n, w.target)
	if !ok {
		return n, true
	}
	restored := prefix + w.asked
	return restored, validName(restored)
}

// zoneName maps a name at or below ZONE to ENV.DOMAIN (the domain form).
// The apex and the SOA's names are short: they always fit.
func (w *responseRestorer) zoneName(n string) string {
	if prefix, ok := kubedns.CutZone(n, w.zone); ok && validName(prefix+w.askedZone) {
		return prefix + w.askedZone
	}
	return n
}

// validName reports whether n, a fully qualified name, fits in the 255
// octets a name may have on the wire (RFC 1035 section 2.3.4; dns.Msg.Unpack
// refuses more). dns.IsDomainName allows 256: it counts the name's text, whose
// last dot stands for the root label's length octet, and not that octet.
func validName(n string) bool {
	if len(n) < 255 { // the text of a name is never shorter than its wire form less the root octet
		return true
	}
	var wire [256]byte
	end, err := dns.PackDomainName(n, wire[:], 0, nil, false)
	return err == nil && end <= 255
}
