package manifests

// The field model's checks that need a real kube-apiserver (test/cluster):
// what a platform's apiserver accepts, and what server-side apply leaves on
// the cluster's own objects.

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/warpdns/warpdns/test/cluster"
)

// familyClusters are kube-apiservers with one Service family each, the
// stand-ins for the platforms' single-stack clusters (fields' families):
// "Amazon EKS doesn't support dual-stacked Pods or services", an EKS
// cluster is IPv4 or IPv6
// (https://docs.aws.amazon.com/eks/latest/userguide/cni-ipv6.html). Such an
// apiserver refuses RequireDualStack ("this cluster is not configured for
// dual-stack services", kubernetes pkg/registry/core/service/storage/alloc.go)
// and gives PreferDualStack one family, which is what EKS does with our
// Service. The shared control plane is dual-stack and accepts both, so it
// cannot tell.
var familyClusters struct {
	sync.Mutex
	byFamily map[string]*applier
}

// familyCluster starts (once per top-level test) a control plane whose
// Service CIDRs are of the given families, stopped when top ends.
func familyCluster(t, top *testing.T, families []corev1.IPFamily) *applier {
	t.Helper()
	key := strings.Join(familyNames(families), ",")
	familyClusters.Lock()
	defer familyClusters.Unlock()
	if a := familyClusters.byFamily[key]; a != nil {
		return a
	}
	var cidrs []string
	for _, f := range families {
		cidrs = append(cidrs, map[corev1.IPFamily]string{corev1.IPv4Protocol: cluster.ServiceCIDRv4, corev1.IPv6Protocol: cluster.ServiceCIDRv6}[f])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{ServiceCIDRs: cidrs})
	if err != nil {
		t.Fatalf("a control plane with Service CIDRs %v: %v", cidrs, err)
	}
	top.Cleanup(func() {
		if err := c.Stop(); err != nil {
			top.Errorf("stopping the %s control plane: %v", key, err)
		}
		familyClusters.Lock()
		delete(familyClusters.byFamily, key)
		familyClusters.Unlock()
	})
	if familyClusters.byFamily == nil {
		familyClusters.byFamily = map[string]*applier{}
	}
	a := newApplier(t, c)
	familyClusters.byFamily[key] = a
	return a
}

func familyNames(families []corev1.IPFamily) (names []string) {
	for _, f := range families {
		names = append(names, string(f))
	}
	return names
}

// TestServiceFamilies server-side dry-runs the load balancer Services of
// every overlay and of the chart (every ci values file, both ways, and
// IPv6 only) against an apiserver with the Service families of the
// overlay's cluster: the apiserver must accept each, with the families asked
// for (PreferDualStack silently losing one would leave the VPC without the
// listener it was meant to get). Issue 22, point 3: the eks-dual-stack
// overlay used to make kube-dns-nlb RequireDualStack.
func TestServiceFamilies(t *testing.T) {
	fsys, ks := loadManifests(t)
	ch := loadChart(t)
	type target struct {
		name     string
		families []corev1.IPFamily
		objs     []*unstructured.Unstructured
	}
	var targets []target
	for _, k := range ks {
		if overlay, ok := strings.CutPrefix(k.name, "overlays/"); ok {
			targets = append(targets, target{k.name, fields[overlay].families, build(t, fsys, k.dir)})
		}
	}
	for _, c := range chartCases(t) {
		targets = append(targets, target{"chart/" + c.name(), fields[c.overlay].families, render(t, ch, chartValues(t, c))})
	}
	// An EKS IPv6 cluster.
	targets = append(targets, target{"chart/eks-stg/ipv6-only", ipv6, render(t, ch, ipv6OnlyValues(t))})

	top := t
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			if len(tg.families) == 0 {
				t.Fatal("the field model names no Service families for this cluster (fields)")
			}
			a := familyCluster(t, top, tg.families)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			services := slices.DeleteFunc(slices.Clone(tg.objs), func(o *unstructured.Unstructured) bool { return o.GetKind() != "Service" })
			if len(services) == 0 {
				t.Fatal("no Service")
			}
			for _, o := range services {
				if err := ensureNamespace(ctx, a, o.GetNamespace()); err != nil {
					t.Fatal(err)
				}
				out, err := a.apply(ctx, o, true)
				if err != nil {
					t.Errorf("on a cluster with Service families %v: %v", familyNames(tg.families), err)
					continue
				}
				want := convert[corev1.Service](t, o).Spec.IPFamilies
				if got := convert[corev1.Service](t, out).Spec.IPFamilies; !slices.Equal(got, want) {
					t.Errorf("%s asks for IP families %v, a cluster with Service families %v gives it %v",
						describe(o), familyNames(want), familyNames(tg.families), familyNames(got))
				}
			}
		})
	}
}

// ensureNamespace creates ns for real (a dry-run namespace holds nothing).
func ensureNamespace(ctx context.Context, a *applier, ns string) error {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion("v1")
	o.SetKind("Namespace")
	o.SetName(ns)
	_, err := a.apply(ctx, o, false)
	return err
}

// eksWayOneBuilds are the EKS builds of way 1 (replace the kube-dns
// image), by kustomize and by the chart.
func eksWayOneBuilds(t *testing.T) map[string][]*unstructured.Unstructured {
	fsys, _ := loadManifests(t)
	return map[string][]*unstructured.Unstructured{
		"overlays/eks-stg":      build(t, fsys, "/manifests/overlays/eks-stg"),
		"chart/eks-stg/replace": render(t, loadChart(t), chartValues(t, chartCase{"eks-stg", "replace"})),
	}
}

// TestReadinessGateLabelComesOff: the kube-system Namespace of the way-1 EKS
// builds (overlays and chart) carries no readiness-gate label, and applying
// it removes the label an earlier version applied, on the real apiserver:
// "If the field is not owned by any other field managers, it is either
// deleted from the live object or reset to its default value"
// (https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management).
// Issue 22, point 5.
func TestReadinessGateLabelComesOff(t *testing.T) {
	ctx, c, a := prepare(t)
	const label = "elbv2.k8s.aws/pod-readiness-gate-inject"
	builds := eksWayOneBuilds(t)
	for _, name := range keys(builds) {
		t.Run(name, func(t *testing.T) {
			ns := find(builds[name], "Namespace", "kube-system")
			if ns == nil {
				t.Fatal("the build has no partial Namespace kube-system: nothing takes an earlier version's label off")
			}
			earlier := ns.DeepCopy()
			earlier.SetLabels(map[string]string{label: "enabled"})
			if _, err := a.apply(ctx, earlier, false); err != nil {
				t.Fatal(err)
			}
			if _, err := a.apply(ctx, ns, false); err != nil {
				t.Fatal(err)
			}
			live, err := c.Client.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := live.Labels[label]; ok {
				t.Errorf("after applying the build, kube-system still has %s=%s", label, v)
			}
		})
	}
}

// TestHairpinAntiAffinityMerges: in way 1 the aws component's required
// anti-affinity against cloudflared is merged into kubeadm's CoreDNS by
// server-side apply and kubeadm's preferred spreading stays (the two lists
// are separate fields of PodAntiAffinity, each atomic: k8s.io/api core/v1).
// Issue 22, point 6.
func TestHairpinAntiAffinityMerges(t *testing.T) {
	ctx, _, a := prepare(t)
	builds := eksWayOneBuilds(t)
	for _, name := range keys(builds) {
		t.Run(name, func(t *testing.T) {
			out, err := a.apply(ctx, find(builds[name], "Deployment", "coredns"), true)
			if err != nil {
				t.Fatal(err)
			}
			pod := convert[appsv1.Deployment](t, out).Spec.Template.Spec
			dns := scheduledPod{&matcher.InternalPeer{Namespace: "kube-system", PodLabels: map[string]string{"k8s-app": "kube-dns"}}, pod.Affinity}
			if !repels(dns, cloudflaredPod()) {
				t.Error("merged coredns: no required anti-affinity against the cloudflared pods")
			}
			if pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil || len(pod.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
				t.Error("merged coredns: kubeadm's preferred anti-affinity is gone")
			}
		})
	}
}
