// Package envalias implements environment aliases for Kubernetes Service
// names: stg-api.platform.svc.cluster.local is answered as Service api in
// namespace platform, and the answer speaks only of the name asked.
package envalias

import (
	"context"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
)

// services tells whether a Service exists; the kubernetes plugin's informer
// cache in production, a map in tests.
type services interface {
	serviceExists(key string) bool // key is object.ServiceKey(name, namespace)
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
	al, ok := e.aliasOf(q.Name)
	if !ok || (al.literalKey != "" && e.services != nil && e.services.serviceExists(al.literalKey)) {
		// Not an alias, or a real Service has the alias' name: it is served as itself.
		return plugin.NextOrFailure(e.Name(), e.Next, ctx, w, r)
	}
	requestCount.WithLabelValues(metrics.WithServer(ctx), al.env).Inc()

	// Earlier plugins (log, dnstap, metrics) still hold r: the next ones get a
	// copy with a question of its own. The rest (the OPT record) is r's, as it
	// is when no plugin rewrites the query.
	req := *r
	req.Question = []dns.Question{{Name: al.name, Qtype: q.Qtype, Qclass: q.Qclass}}
	rw := &responseRestorer{ResponseWriter: w, question: q, alias: al}
	return plugin.NextOrFailure(e.Name(), e.Next, ctx, rw, &req)
}

// Name implements the plugin.Handler interface.
func (e *Envalias) Name() string { return pluginName }
