// Package envalias implements environment aliases for Kubernetes Service
// names: stg-api.platform.svc.cluster.local is answered as Service api in
// namespace platform, and the answer speaks only of the name asked.
package envalias

import (
	"context"
	"errors"
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
)

// services tells whether a Service exists; the kubernetes plugin's informer
// cache in production, a map in tests.
type services interface {
	serviceExists(name, namespace string) bool
}

// Envalias rewrites ENV-SVC.NS.svc.ZONE (and SVC.NS.ENV.DOMAIN) to
// SVC.NS.svc.ZONE, and the reply back.
type Envalias struct {
	Next plugin.Handler
	// Zones are the configured zones; on startup they select the kubernetes
	// plugin's zones the aliases live in (aliaser.zones).
	Zones []string

	aliaser
	services services
}

// ServeDNS implements the plugin.Handler interface.
func (e *Envalias) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) != 1 {
		return plugin.NextOrFailure(e.Name(), e.Next, ctx, w, r)
	}
	// The question as asked, byte for byte: it must come back unchanged.
	q := r.Question[0]
	al, ok := e.parse(q.Name)
	if !ok || (al.literal != "" && e.services != nil && e.services.serviceExists(al.literal, al.ns)) {
		// Not an alias, or a real Service has the alias' name: it is served as itself.
		return plugin.NextOrFailure(e.Name(), e.Next, ctx, w, r)
	}

	requestCount.WithLabelValues(metrics.WithServer(ctx), al.env).Inc()

	// Earlier plugins (log, dnstap, metrics) still hold r: change a copy.
	r2 := r.Copy()
	r2.Question[0].Name = al.name
	rw := &responseRestorer{ResponseWriter: w, question: q, alias: al}
	return plugin.NextOrFailure(e.Name(), e.Next, ctx, rw, r2)
}

// Name implements the plugin.Handler interface.
func (e *Envalias) Name() string { return pluginName }

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
	// The reply may be the cache's (or another plugin's) data.
	res = res.Copy()

	if len(res.Question) == 0 {
		res.Question = []dns.Question{w.question}
	} else {
		res.Question[0] = w.question
	}
	for _, rrs := range [][]dns.RR{res.Answer, res.Ns, res.Extra} {
		for _, rr := range rrs {
			w.restore(rr)
		}
	}
	return w.ResponseWriter.WriteMsg(res)
}

// restore rewrites the names in rr that point into the aliased Service.
func (w *responseRestorer) restore(rr dns.RR) {
	h := rr.Header()
	h.Name = w.name(h.Name)
	switch rr := rr.(type) {
	case *dns.SRV:
		rr.Target = w.name(rr.Target)
	case *dns.CNAME:
		rr.Target = w.name(rr.Target)
	case *dns.SOA:
		// A negative answer's SOA is the apex of the zone the question is
		// in; in the domain form that is ENV.DOMAIN, not ZONE.
		if w.askedZone != "" {
			h.Name = w.zoneName(h.Name)
			rr.Ns = w.zoneName(rr.Ns)
			rr.Mbox = w.zoneName(rr.Mbox)
		}
	}
}

// name maps a name at or below the target back to the asked spelling.
func (w *responseRestorer) name(n string) string {
	if strings.EqualFold(n, w.alias.name) {
		return w.question.Name
	}
	if prefix, ok := cutSuffixFold(n, w.target); ok {
		return prefix + w.asked
	}
	return n
}

// zoneName maps a name at or below ZONE to ENV.DOMAIN (the domain form).
func (w *responseRestorer) zoneName(n string) string {
	if prefix, ok := cutSuffixFold(n, w.zone); ok {
		return prefix + w.askedZone
	}
	return n
}
