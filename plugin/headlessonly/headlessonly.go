// Package headlessonly answers ClusterIP Services the way the kubernetes plugin answers headless
// Services, for the clients that cannot reach ClusterIPs (e.g. a VPC-facing listener); see README.md.
package headlessonly

import (
	"context"
	"net"
	"net/netip"
	"slices"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/kubernetes"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/warpdns/warpdns/internal/kubedns"

	"github.com/miekg/dns"
)

// HeadlessOnly hands selected queries to the kubernetes plugin with a view of its cache in which
// ClusterIP Services look headless, so the answers are exactly what a headless Service gets.
type HeadlessOnly struct {
	Next  plugin.Handler
	Zones []string

	namespaces map[string]string // namespace -> where it is configured; nil: every namespace
	fallback   bool              // answer the ClusterIP when a Service has no ready endpoint
	ports      []uint16          // local listener ports; empty: any
	clients    []netip.Prefix    // source networks; empty: any
	where      string            // file:line of the directive, for errors found at startup

	k       *kubernetes.Kubernetes // set in OnStartup
	answers answerCache
}

// ServeDNS implements the plugin.Handler interface.
func (h *HeadlessOnly) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if !h.selected(w, r) {
		return plugin.NextOrFailure(h.Name(), h.Next, ctx, w, r)
	}
	server := metrics.WithServer(ctx)
	requestCount.WithLabelValues(server, qtypeLabel(r.Question[0].Qtype)).Inc()

	if m := h.answers.get(r, h.k.APIConn); m != nil {
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	}
	return h.serveView(ctx, w, r, server)
}

// serveView answers r with the kubernetes plugin reading a headless view of its cache, and keeps
// the answer if it can be reused.
func (h *HeadlessOnly) serveView(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, server string) (int, error) {
	state := h.answers.begin(h.k.APIConn)
	view := &headlessConn{Controller: h.k.APIConn, h: h, server: server}
	rec := &answerRecorder{ResponseWriter: w}
	// A copy of the kubernetes plugin whose only difference is the cache it reads. Its Next is the
	// kubernetes plugin's own, so fallthrough behaves exactly as configured there. The copy is
	// made here because the plugin finishes its own setup (local IPs) after our OnStartup; stock
	// copies the struct per query too (Kubernetes.ServeDNS has a value receiver).
	k := *h.k
	k.APIConn = view
	k.Next = passOn{h.k.Next}
	rcode, err := k.ServeDNS(ctx, rec, r)
	if rec.msg != nil && !rec.passed && !view.noReady && err == nil {
		h.answers.put(r, rec.msg, state, h.k)
	}
	return rcode, err
}

// selected reports whether r is one we serve headless-style. Every query of the server block
// passes through here, so the checks that cannot allocate come first.
func (h *HeadlessOnly) selected(w dns.ResponseWriter, r *dns.Msg) bool {
	if h.k == nil || len(r.Question) == 0 {
		return false
	}
	q := r.Question[0]
	// Reverse lookups never depend on a Service being headless: leave them to kubernetes.
	if q.Qtype == dns.TypePTR {
		return false
	}
	if len(h.ports) > 0 {
		local, ok := addrPort(w.LocalAddr())
		if !ok || !slices.Contains(h.ports, local.Port()) {
			return false
		}
	}
	if len(h.clients) > 0 {
		remote, ok := addrPort(w.RemoteAddr())
		if !ok || !containsAddr(h.clients, remote.Addr()) {
			return false
		}
	}
	// Names outside the kubernetes plugin's zones would pass through it untouched anyway; not
	// counting them keeps the requests metric meaningful when ZONES is the root.
	return kubedns.InZones(h.Zones, q.Name) && kubedns.InZones(h.k.Zones, q.Name)
}

// Name implements the plugin.Handler interface.
func (h *HeadlessOnly) Name() string { return pluginName }

// addrPort returns a's address and port, unmapped and without zone, as client networks are
// written.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	case nil:
		return ap, false
	default: // DoH, DoT, gRPC, ... writers
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return ap, false
		}
	}
	// A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), ap.Addr().IsValid()
}

func containsAddr(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// qtypeLabel keeps the type label's cardinality fixed.
func qtypeLabel(qtype uint16) string {
	switch qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeSRV:
		return dns.TypeToString[qtype]
	}
	return "other"
}
