package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/warpdns/warpdns/test/cluster"
)

// fieldManager is the field manager the docs tell users to apply with.
const fieldManager = "warpdns"

// warnings collects the apiserver's warning headers (deprecations, Pod
// Security violations) so that the check can fail on them.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// applier applies objects to the local control plane with server-side apply.
type applier struct {
	dyn      dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	warnings *warnings
}

func newApplier(t testing.TB, c *cluster.Cluster) *applier {
	cfg := rest.CopyConfig(c.RESTConfig)
	w := &warnings{}
	cfg.WarningHandler = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)), warnings: w}
}

func (a *applier) resource(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	// A CRD that just became Established may not be in discovery yet.
	for deadline := time.Now().Add(15 * time.Second); meta.IsNoMatchError(err) && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(o), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource).Namespace(o.GetNamespace()), nil
	}
	return a.dyn.Resource(m.Resource), nil
}

// apply server-side applies o as `kubectl apply --server-side
// --force-conflicts --field-manager=warpdns` would; with dryRun, as
// `--dry-run=server`: admission and validation run, nothing is stored.
func (a *applier) apply(ctx context.Context, o *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	ri, err := a.resource(o)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(o.Object)
	if err != nil {
		return nil, err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(o), err)
	}
	return out, nil
}

// prepare makes the local control plane look like a cluster our manifests
// are applied to: the CRDs of Cilium, MetalLB and the Prometheus Operator
// (vendored, minimal), the namespaces our manifests do not create, and
// kubeadm's CoreDNS, which the replace-kube-dns way patches. The dry-run tests
// share the control plane, so each calls it, and a second call changes nothing.
// It returns the control plane, an applier for it and a 5-minute context.
func prepare(t *testing.T) (context.Context, *cluster.Cluster, *applier) {
	t.Helper()
	c := cluster.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	a := newApplier(t, c)
	crdFiles, err := filepath.Glob(filepath.Join("testdata", "crds", "*.yaml"))
	if err != nil || len(crdFiles) == 0 {
		t.Fatalf("no vendored CRDs: %v", err)
	}
	for _, f := range crdFiles {
		for _, crd := range readObjects(t, f) {
			if _, err := a.apply(ctx, crd, false); err != nil {
				t.Fatalf("installing CRD: %v", err)
			}
			err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				o, err := a.dyn.Resource(schemaCRD).Get(ctx, crd.GetName(), metav1.GetOptions{})
				return err == nil && crdEstablished(o), nil
			})
			if err != nil {
				t.Fatalf("CRD %s not Established after 30s (%v)", crd.GetName(), err)
			}
		}
	}
	a.mapper.Reset()

	if err := c.EnsureNamespace(ctx, "metallb-system"); err != nil {
		t.Fatal(err)
	}
	// kubeadm's CoreDNS as kubeadm creates it (create, not apply, so that
	// its fields belong to another manager, as in a real cluster), once: a
	// second create of its Service fails on the taken ClusterIP.
	for _, o := range readObjects(t, filepath.Join("testdata", "kubeadm-coredns.yaml")) {
		ri, err := a.resource(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{}); err == nil {
			continue
		}
		if _, err = ri.Create(ctx, o, metav1.CreateOptions{FieldManager: "kubeadm"}); err != nil {
			t.Fatalf("creating kubeadm's %s: %v", describe(o), err)
		}
	}
	// Pod Security "restricted" warnings for kube-system too, so that the
	// patched CoreDNS is held to the same standard as our own namespaces.
	patch := []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/warn":"restricted"}}}`)
	if _, err := c.Client.CoreV1().Namespaces().Patch(ctx, "kube-system", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	a.warnings.take()
	return ctx, c, a
}

var schemaCRD = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

func crdEstablished(o *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		c := c.(map[string]any)
		if c["type"] == "Established" && c["status"] == "True" {
			return true
		}
	}
	return false
}

// TestDryRun server-side dry-run applies every build to the local
// kube-apiserver: schema validation, defaulting, admission (Pod Security
// "restricted" in our namespaces and, for the patched CoreDNS, in
// kube-system) and, for replace-kube-dns, the merge into kubeadm's existing
// Deployment. Any error or warning fails it.
func TestDryRun(t *testing.T) {
	ctx, _, a := prepare(t)

	fsys, ks := loadManifests(t)
	for _, k := range ks {
		t.Run(k.name, func(t *testing.T) {
			dryRunAll(t, ctx, a, build(t, fsys, k.dir))
		})
	}
}

// dryRunAll server-side dry-run applies objs and fails on any error or
// warning; kubeadm's coredns Deployment with our patch merged in is checked
// as the apiserver returned it. Namespaces are applied for real first: a
// dry-run namespace does not exist for the objects in it, and its Pod
// Security labels must be in force for them.
func dryRunAll(t *testing.T, ctx context.Context, a *applier, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			if _, err := a.apply(ctx, o, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	a.warnings.take()
	for _, o := range objs {
		out, err := a.apply(ctx, o, true)
		if err != nil {
			t.Errorf("dry-run apply: %v", err)
			continue
		}
		if w := a.warnings.take(); len(w) > 0 {
			t.Errorf("dry-run apply %s: warnings:\n  %s", describe(o), strings.Join(w, "\n  "))
		}
		if o.GetKind() == "Deployment" && o.GetName() == "coredns" {
			checkMergedCoreDNS(t, out)
		}
	}
}

// checkMergedCoreDNS checks kubeadm's Deployment with our patch merged in, as
// the apiserver returned it: our image and Corefile, both listeners, and
// everything the security defaults ask for (kubeadm's probes, replicas and
// anti-affinity included).
func checkMergedCoreDNS(t *testing.T, out *unstructured.Unstructured) {
	d := convert[appsv1.Deployment](t, out)
	checkPodSecurity(t, d, false)
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if len(pod.Containers) != 1 || !strings.HasPrefix(c.Image, "registry.example.com/warpdns:") {
		t.Errorf("merged coredns: image %q, want ours", c.Image)
	}
	if got := strings.Join(c.Args, " "); got != "-conf /etc/coredns/Corefile" {
		t.Errorf("merged coredns: args %q, kubeadm's were kept before", got)
	}
	if c.SecurityContext.Capabilities != nil && slices.Contains(c.SecurityContext.Capabilities.Add, "NET_BIND_SERVICE") {
		t.Error("merged coredns: kubeadm's NET_BIND_SERVICE is still added")
	}
	if v := pod.Volumes; len(v) != 1 || v[0].Name != "config-volume" || v[0].ConfigMap == nil || v[0].ConfigMap.Name != "coredns-warpdns" ||
		len(v[0].ConfigMap.Items) != 1 || v[0].ConfigMap.Items[0].Key != "Corefile" {
		t.Errorf("merged coredns: volumes %+v, want config-volume from ConfigMap coredns-warpdns (key Corefile)", pod.Volumes)
	}
	if d.Spec.Selector == nil || d.Spec.Selector.MatchLabels["k8s-app"] != "kube-dns" {
		t.Errorf("merged coredns: selector changed to %v", d.Spec.Selector)
	}
	// docs/deploy.md: a rollout starts one new pod at a time and never has
	// fewer ready pods than replicas (kubeadm's own is maxUnavailable: 1).
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 ||
		ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 1 {
		t.Errorf("merged coredns: rolling update %+v, want maxUnavailable 0 and maxSurge 1 as docs/deploy.md says", ru)
	}
}
