package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestStagingModules(t *testing.T) {
	goMod := "module k8s.io/kubernetes\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\tk8s.io/klog/v2 => k8s.io/klog/v2 v2.1.0\n)\n"
	got, err := stagingModules(goMod)
	if err != nil || len(got) != 1 || got[0] != "k8s.io/api" {
		t.Fatalf("stagingModules = %v, %v; want [k8s.io/api]", got, err)
	}
	if _, err := stagingModules("module x\n"); err == nil {
		t.Fatal("want an error for a go.mod without staging replacements")
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports, err := FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p == 0 {
			t.Fatalf("ports not distinct: %v", ports)
		}
		seen[p] = true
	}
}

// TestDemoWorld starts the real control plane and checks that the demo world
// is written as the endpointslice controller would write it.
func TestDemoWorld(t *testing.T) {
	c := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	demo, err := SeedDemo(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(demo.APIClusterIP, "10.96.") {
		t.Errorf("api ClusterIP %q not allocated from %s", demo.APIClusterIP, ServiceCIDRv4)
	}
	slices, err := c.Client.DiscoveryV1().EndpointSlices(DemoNamespace).List(ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=api"})
	if err != nil {
		t.Fatal(err)
	}
	if len(slices.Items) != 1 {
		t.Fatalf("api has %d slices, want 1", len(slices.Items))
	}
	s := slices.Items[0]
	if s.Labels[discoveryv1.LabelManagedBy] != "endpointslice-controller.k8s.io" || len(s.OwnerReferences) != 1 {
		t.Errorf("slice not labelled/owned like the controller's: %+v", s.ObjectMeta)
	}
	var ready, notReady int
	for _, ep := range s.Endpoints {
		if *ep.Conditions.Ready {
			ready++
		} else {
			notReady++
		}
	}
	if ready != 2 || notReady != 1 {
		t.Errorf("ready/not ready = %d/%d, want 2/1", ready, notReady)
	}
	ports := map[string]int32{}
	for _, p := range s.Ports {
		ports[*p.Name] = *p.Port
	}
	if ports["http"] != 8080 || ports["grpc"] != 9091 {
		t.Errorf("slice ports %v, want the target ports http=8080 grpc=9091", ports)
	}
}

// TestSetEndpointsSplitsLargeServices checks the 100-per-slice split, the
// per-family slices of a dual-stack Service, and that a smaller set removes
// the surplus slices.
func TestSetEndpointsSplitsLargeServices(t *testing.T) {
	c := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.EnsureNamespace(ctx, "split"); err != nil {
		t.Fatal(err)
	}
	big := service("big", corev1.ServiceSpec{
		IPFamilyPolicy: ptr(corev1.IPFamilyPolicyRequireDualStack),
		Ports:          []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
	})
	big.Namespace = "split"
	svc, err := c.CreateService(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.ClusterIPs) != 2 {
		t.Errorf("dual-stack Service got ClusterIPs %v", svc.Spec.ClusterIPs)
	}
	var eps []Endpoint
	for i := range 250 {
		eps = append(eps, Endpoint{IP: fmt.Sprintf("10.245.%d.%d", i/200, i%200+1)})
	}
	eps = append(eps, Endpoint{IP: "fd00:10:244::1"})
	if err := c.SetEndpoints(ctx, svc, eps, nil); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		list, err := c.Client.DiscoveryV1().EndpointSlices("split").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}
	if n := count(); n != 4 { // 100 + 100 + 50 IPv4, 1 IPv6
		t.Fatalf("%d slices, want 4", n)
	}
	if err := c.SetEndpoints(ctx, svc, eps[:10], nil); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d slices after shrinking, want 1", n)
	}
}
