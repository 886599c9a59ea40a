package headlessonly

import (
	"slices"

	"github.com/coredns/coredns/plugin/kubernetes/object"
	"github.com/warpdns/warpdns/internal/kubedns"

	api "k8s.io/api/core/v1"
)

// headlessConn is the kubernetes plugin's cache as one query sees it: identical, except that
// SvcIndex presents ClusterIP Services as headless.
type headlessConn struct {
	kubedns.Controller
	h      *HeadlessOnly
	server string

	noReady bool // a Service of this query had no ready endpoint
}

// none is shared by every rewritten Service; nothing writes to it.
var none = []string{api.ClusterIPNone}

// SvcIndex returns the Services under key, with those we serve replaced by headless copies.
// The cached objects are shared with every other query and are never modified.
func (c *headlessConn) SvcIndex(key string) []*object.Service {
	svcs := c.Controller.SvcIndex(key)
	copied := false
	for i, s := range svcs {
		hs := c.asHeadless(s)
		if hs == s {
			continue
		}
		if !copied { // the slice may be the cache's too
			svcs, copied = slices.Clone(svcs), true
		}
		svcs[i] = hs
	}
	return svcs
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
		c.noReady = true
		noReadyCount.WithLabelValues(c.server).Inc()
		if c.h.fallback {
			return s
		}
	}
	hs := *s
	hs.ClusterIPs = none
	return &hs
}

// headless reports whether s should be presented as headless: it has a virtual IP and lives in
// a selected namespace. Headless and ExternalName Services are left alone.
func (h *HeadlessOnly) headless(s *object.Service) bool {
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
