// Package kubedns is what envalias and headlessonly share about the kubernetes plugin of their
// server block: finding it, the method set of its cache, and matching names against its zones.
package kubedns

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/kubernetes"
	"github.com/coredns/coredns/plugin/kubernetes/object"

	api "k8s.io/api/core/v1"
)

// Controller is the method set of the kubernetes plugin's unexported dnsController interface, the
// type of Kubernetes.APIConn: its informer cache.
type Controller interface {
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

// Plugin returns the kubernetes plugin, given the handler its server block has under that name
// (dnsserver.GetConfig(c).Handler("kubernetes")). Call it in OnStartup, once every plugin of
// the block is set up.
func Plugin(h plugin.Handler) (*kubernetes.Kubernetes, error) {
	if h == nil {
		return nil, errors.New("the kubernetes plugin is not in this server block")
	}
	k, ok := h.(*kubernetes.Kubernetes)
	if !ok {
		return nil, fmt.Errorf("the handler named %q is a %T, not the kubernetes plugin", h.Name(), h)
	}
	return k, nil
}

// CutZone returns what comes before zone in name, if name is zone or a name below it; prefix is
// then empty or ends with a dot. Both names are fully qualified, zone is lower case; letters
// compare without regard to case, as in DNS. It is plugin.Zones.Matches for one zone, plus the
// prefix, which envalias needs to translate a name (Matches gives the zone only).
func CutZone(name, zone string) (prefix string, ok bool) {
	if zone == "." {
		if name == "." {
			return "", true
		}
		return name, strings.HasSuffix(name, ".")
	}
	i := len(name) - len(zone) // where zone would start in name
	if i < 0 || (name[i:] != zone && !strings.EqualFold(name[i:], zone)) {
		return "", false
	}
	if i == 0 {
		return "", true
	}
	// zone must start a label: the byte before it is a dot that no backslash escapes.
	if name[i-1] != '.' {
		return "", false
	}
	backslashes := 0
	for j := i - 2; j >= 0 && name[j] == '\\'; j-- {
		backslashes++
	}
	if backslashes%2 == 1 {
		return "", false
	}
	return name[:i], true
}

// InZones reports whether name is in one of zones, as plugin.Zones(zones).Matches(name) != "".
func InZones(zones []string, name string) bool { return Zone(zones, name) != "" }

// Zone returns the longest of zones that name is in, or "": plugin.Zones(zones).Matches(name),
// without its allocations.
func Zone(zones []string, name string) string {
	match := ""
	for _, z := range zones {
		if _, ok := CutZone(name, z); ok && len(z) > len(match) {
			match = z
		}
	}
	return match
}
