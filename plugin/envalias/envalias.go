// Package envalias is a CoreDNS plugin; see README.md.
package envalias

import (
	"context"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
)

type handler struct {
	Next plugin.Handler
}

// ServeDNS passes every query on unchanged (skeleton).
func (h *handler) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return plugin.NextOrFailure(pluginName, h.Next, ctx, w, r)
}

// Name implements plugin.Handler.
func (h *handler) Name() string { return pluginName }
