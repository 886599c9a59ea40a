package kubedns

import (
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/kubernetes"
	"github.com/coredns/coredns/plugin/test"
)

func TestCutZone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, zone, prefix string
		ok                 bool
	}{
		{"api.platform.svc.cluster.local.", "cluster.local.", "api.platform.svc.", true},
		{"API.Platform.SVC.Cluster.Local.", "cluster.local.", "API.Platform.SVC.", true},
		{"cluster.local.", "cluster.local.", "", true},
		{"CLUSTER.LOCAL.", "cluster.local.", "", true},
		{"mycluster.local.", "cluster.local.", "", false},
		{"a\\.cluster.local.", "cluster.local.", "", false}, // the dot is part of a label
		{"a\\\\.cluster.local.", "cluster.local.", "a\\\\.", true},
		{"local.", "cluster.local.", "", false},
		{"www.example.org.", ".", "www.example.org.", true},
		{"www.example.org", ".", "www.example.org", false},
		{".", ".", "", true}, // the root is the zone: nothing before it
	} {
		prefix, ok := CutZone(tc.name, tc.zone)
		if prefix != tc.prefix || ok != tc.ok {
			t.Errorf("CutZone(%q, %q) = %q, %t; want %q, %t", tc.name, tc.zone, prefix, ok, tc.prefix, tc.ok)
		}
		// The same answer as upstream's zone matching.
		if matched := plugin.Zones([]string{tc.zone}).Matches(tc.name) != ""; matched != ok && tc.name[len(tc.name)-1] == '.' {
			t.Errorf("CutZone(%q, %q): %t, plugin.Zones.Matches says %t", tc.name, tc.zone, ok, matched)
		}
	}
}

func TestPlugin(t *testing.T) {
	t.Parallel()
	if _, err := Plugin(nil); err == nil || err.Error() != "the kubernetes plugin is not in this server block" {
		t.Errorf("no kubernetes plugin: error %v", err)
	}
	if _, err := Plugin(test.ErrorHandler()); err == nil {
		t.Error("a handler that is not the kubernetes plugin was accepted")
	}
	k := kubernetes.New([]string{"cluster.local."})
	if got, err := Plugin(k); err != nil || got != k {
		t.Errorf("Plugin(k) = %v, %v", got, err)
	}
}

var _ Controller = kubernetes.New(nil).APIConn // nil, but of the controller's interface type
