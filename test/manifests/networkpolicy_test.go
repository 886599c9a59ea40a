package manifests

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestNetworkPolicyLimitsTheVPCListener: the standalone way's NetworkPolicy
// admits the VPC-facing port 5353 from address blocks only (the VPC), never
// from every pod or namespace.
func TestNetworkPolicyLimitsTheVPCListener(t *testing.T) {
	fsys, _ := loadManifests(t)
	obj := find(build(t, fsys, "/manifests/overlays/gke"), "NetworkPolicy", "warpdns")
	if obj == nil {
		t.Fatal("the standalone way has no NetworkPolicy warpdns")
	}
	var np networkingv1.NetworkPolicy
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &np); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rule := range np.Spec.Ingress {
		opens5353 := false
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.IntValue() == 5353 {
				opens5353 = true
			}
		}
		if !opens5353 {
			continue
		}
		found = true
		for _, peer := range rule.From {
			if peer.IPBlock == nil || peer.PodSelector != nil || peer.NamespaceSelector != nil {
				t.Errorf("port 5353 is open to %+v; want address blocks only", peer)
			}
		}
		if len(rule.From) == 0 {
			t.Error("port 5353 is open to everyone")
		}
	}
	if !found {
		t.Error("no ingress rule for the VPC-facing port 5353")
	}
}
