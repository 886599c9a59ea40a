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
	"github.com/coredns/coredns/plugin/kubernetes/object"
	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	api "k8s.io/api/core/v1"
)

// Headlessonly hands selected queries to the kubernetes plugin with a view of its cache in which
// ClusterIP Services look headless, so the answers are exactly what a headless Service gets.
type Headlessonly struct {
	Next  plugin.Handler
	Zones []string

	namespaces map[string]struct{} // nil: every namespace the kubernetes plugin serves
	fallback   bool                // answer the ClusterIP when a Service has no ready endpoint
	ports      []uint16            // local listener ports; empty: any
	clients    []netip.Prefix      // source networks; empty: any

	k *kubernetes.Kubernetes // set in OnStartup
}

// ServeDNS implements the plugin.Handler interface.
func (h *Headlessonly) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if !h.selected(w, r) {
		return plugin.NextOrFailure(h.Name(), h.Next, ctx, w, r)
	}

	server := metrics.WithServer(ctx)
	requestCount.WithLabelValues(server, qtypeLabel(r.Question[0].Qtype)).Inc()

	// A copy of the kubernetes plugin whose only difference is the cache it reads. Its Next is the
	// kubernetes plugin's own, so fallthrough behaves exactly as configured there. It is made per
	// query because the plugin finishes its own setup (local IPs) after our OnStartup, and it is
	// cheap: Kubernetes.ServeDNS has a value receiver, so stock copies the struct per query too.
	// It lives on the heap with the cache view, in one allocation, and is called as stock calls
	// the plugin (through plugin.Handler): a copy of the 424-byte struct in this frame would make
	// every selected query's stack deeper than stock's, and a goroutine that outgrows its stack
	// pays for copying all of it.
	v := new(headlessView)
	v.k = *h.k
	v.conn.apiConn, v.conn.h, v.conn.server = h.k.APIConn, h, server
	v.k.APIConn = &v.conn
	return v.handler().ServeDNS(ctx, w, r)
}

// headlessView is the kubernetes plugin as one selected query sees it.
type headlessView struct {
	k    kubernetes.Kubernetes
	conn headlessConn
}

// handler is not inlined so that the call through it stays an interface call, to the
// compiler-made wrapper that copies the struct in a frame of its own, as stock's call does.
//
//go:noinline
func (v *headlessView) handler() plugin.Handler { return &v.k }

// selected reports whether r is one we serve headless-style. Every query of the server block
// passes through here, so the checks that cannot allocate come first: with `ports`, queries on
// the other listeners go on without any allocation.
func (h *Headlessonly) selected(w dns.ResponseWriter, r *dns.Msg) bool {
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
	return inZones(h.Zones, q.Name) && inZones(h.k.Zones, q.Name)
}

// inZones is plugin.Zones(zones).Matches(name) != "" without its allocations (dns.IsSubDomain
// splits both names on every call; this runs for every query we see). zones are normalized: fully
// qualified and lowercase.
func inZones(zones []string, name string) bool {
	for _, z := range zones {
		if z == "." {
			return true
		}
		i := len(name) - len(z) // where z would start in name
		if i < 0 || !equalFoldASCII(name[i:], z) {
			continue
		}
		if i == 0 {
			return true
		}
		// z must start a label: the byte before it is a dot that no backslash escapes.
		if name[i-1] != '.' {
			continue
		}
		backslashes := 0
		for j := i - 2; j >= 0 && name[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return true
		}
	}
	return false
}

// equalFoldASCII compares DNS names as DNS does: ASCII letters fold, other bytes do not.
func equalFoldASCII(name, zone string) bool {
	for i := range len(zone) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != zone[i] {
			return false
		}
	}
	return true
}

// Name implements the plugin.Handler interface.
func (h *Headlessonly) Name() string { return pluginName }

// headless reports whether s should be presented as headless: it has a virtual IP and lives in
// a selected namespace. Headless and ExternalName Services are left alone.
func (h *Headlessonly) headless(s *object.Service) bool {
	switch s.Type {
	case api.ServiceTypeClusterIP, api.ServiceTypeNodePort, api.ServiceTypeLoadBalancer:
	default:
		return false
	}
	if len(s.ClusterIPs) == 0 || s.ClusterIPs[0] == "" || s.Headless() {
		return false
	}
	if h.namespaces != nil {
		if _, ok := h.namespaces[s.Namespace]; !ok {
			return false
		}
	}
	return true
}

// apiConn is the method set of the kubernetes plugin's unexported dnsController interface, so
// headlessConn can be assigned to Kubernetes.APIConn.
type apiConn interface {
	ServiceList() []*object.Service
	EndpointsList() []*object.Endpoints
	ServiceImportList() []*object.ServiceImport
	SvcIndex(string) []*object.Service
	SvcIndexReverse(string) []*object.Service
	SvcExtIndexReverse(string) []*object.Service
	SvcImportIndex(string) []*object.ServiceImport
	PodIndex(string) []*object.Pod
	EpIndex(string) []*object.Endpoints
	EpIndexReverse(string) []*object.Endpoints
	McEpIndex(string) []*object.MultiClusterEndpoints

	GetNodeByName(context.Context, string) (*api.Node, error)
	GetNamespaceByName(string) (*object.Namespace, error)

	Run()
	HasSynced() bool
	Stop() error

	Modified(kubernetes.ModifiedMode) int64
}

// headlessConn is the kubernetes plugin's cache as one query sees it: identical, except that
// SvcIndex presents ClusterIP Services as headless. It lives for one query only.
type headlessConn struct {
	apiConn
	h      *Headlessonly
	server string

	// The kubernetes plugin asks EpIndex for the very key we just looked at in SvcIndex; keep
	// the last answer so the informer index is read once.
	epKey string
	eps   []*object.Endpoints
	epOK  bool

	// Room for SvcIndex's answer when it is one Service (a name is unique in its namespace), so
	// that a query allocates once, for its headlessView. Each is used once; later answers allocate.
	oneList    [1]*object.Service // used once oneList[0] is set
	oneService object.Service
	svcUsed    bool
}

// none is shared by every rewritten Service; nothing writes to it.
var none = []string{api.ClusterIPNone}

// SvcIndex returns the Services under key, with those we serve replaced by headless copies.
// The cached objects are shared with every other query and are never modified.
func (c *headlessConn) SvcIndex(key string) []*object.Service {
	svcs := c.apiConn.SvcIndex(key)
	copied := false
	for i, s := range svcs {
		hs := c.asHeadless(s)
		if hs == s {
			continue
		}
		if !copied { // the slice may be the cache's too
			svcs, copied = c.cloneList(svcs), true
		}
		svcs[i] = hs
	}
	return svcs
}

func (c *headlessConn) cloneList(svcs []*object.Service) []*object.Service {
	if len(svcs) == 1 && c.oneList[0] == nil {
		c.oneList[0] = svcs[0]
		return c.oneList[:]
	}
	return slices.Clone(svcs)
}

func (c *headlessConn) newService() *object.Service {
	if !c.svcUsed {
		c.svcUsed = true
		return &c.oneService
	}
	return new(object.Service)
}

// asHeadless returns a shallow copy of s with ClusterIPs set to "None", which is all that makes
// the kubernetes plugin answer a Service as headless; or s itself when s is not ours to change.
func (c *headlessConn) asHeadless(s *object.Service) *object.Service {
	if !c.h.headless(s) {
		return s
	}
	// s.Index is name.namespace, the same key the Service's EndpointSlices are indexed under
	// (findServices relies on that too).
	if !ready(c.EpIndex(s.Index)) {
		noReadyCount.WithLabelValues(c.server).Inc()
		if c.h.fallback {
			return s
		}
	}
	hs := c.newService()
	*hs = *s
	hs.ClusterIPs = none
	return hs
}

// EpIndex implements the dnsController interface, remembering its last answer.
func (c *headlessConn) EpIndex(key string) []*object.Endpoints {
	if !c.epOK || key != c.epKey {
		c.epKey, c.eps, c.epOK = key, c.apiConn.EpIndex(key), true
	}
	return c.eps
}

// ready reports whether eps hold an address. The kubernetes plugin's cache keeps ready endpoints
// only (see object.EndpointSliceToEndpoints), so any address is a ready one.
func ready(eps []*object.Endpoints) bool {
	for _, ep := range eps {
		for _, s := range ep.Subsets {
			if len(s.Addresses) > 0 {
				return true
			}
		}
	}
	return false
}

// addrPort returns a's address and port without allocating for the UDP and TCP listeners.
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
