package manifests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/warpdns/warpdns/test/cluster"
)

// TestStandaloneServesWithItsOwnRBAC applies the standalone way's namespace,
// ServiceAccount and RBAC for real, then runs our coredns with the Corefile
// from the build's ConfigMap and a token of that ServiceAccount: the
// least-privilege ClusterRole must be enough for the kubernetes plugin (and
// envalias and headlessonly on its cache) to answer, and must not grant more.
func TestStandaloneServesWithItsOwnRBAC(t *testing.T) {
	c := cluster.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	a := newApplier(t, c)

	fsys, _ := loadManifests(t)
	objs := build(t, fsys, "/manifests/overlays/gke")
	for _, kind := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} {
		for _, o := range objs {
			if o.GetKind() == kind {
				if _, err := a.apply(ctx, o, false); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	sa := find(objs, "ServiceAccount", "warpdns")
	var err error
	user := fmt.Sprintf("system:serviceaccount:%s:%s", sa.GetNamespace(), sa.GetName())

	// No more than it needs.
	for _, attr := range []authzv1.ResourceAttributes{
		{Verb: "list", Resource: "services"},
		{Verb: "watch", Group: "discovery.k8s.io", Resource: "endpointslices"},
		{Verb: "list", Resource: "namespaces"},
		{Verb: "list", Resource: "pods"},
		{Verb: "get", Resource: "secrets", Namespace: "kube-system"},
		{Verb: "list", Resource: "endpoints"},
		{Verb: "update", Resource: "services", Namespace: "default"},
		{Verb: "get", Resource: "configmaps", Namespace: "warpdns"},
	} {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.GetNamespace(), "system:authenticated"},
			ResourceAttributes: &attr,
		}}
		want := attr.Verb == "list" && (attr.Resource == "services" || attr.Resource == "namespaces") ||
			attr.Resource == "endpointslices"
		// The authorizer learns of a new binding from its informer: wait
		// for what must be allowed.
		var got *authzv1.SubjectAccessReview
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			got, err = c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed || !want || time.Now().After(deadline) {
				break
			}
		}
		if got.Status.Allowed != want {
			t.Errorf("%s may %s %s/%s: %v, want %v", user, attr.Verb, attr.Group, attr.Resource, got.Status.Allowed, want)
		}
	}

	// Enough for the plugins: serve the demo world with that identity.
	demo, err := cluster.SeedDemo(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tok, err := c.Client.CoreV1().ServiceAccounts(sa.GetNamespace()).CreateToken(ctx, sa.GetName(),
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertTokenCannotReadSecretsOrWrite(ctx, t, c, tok.Status.Token)

	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(cluster.KubeconfigFor(c.Server, tok.Status.Token)), 0o600); err != nil {
		t.Fatal(err)
	}
	cm := find(objs, "ConfigMap", "warpdns")
	corefile, _, _ := unstructured.NestedString(cm.Object, "data", "Corefile")
	// The Corefile's envalias reads WARPDNS_ENV, which the Deployment sets;
	// coredns inherits it from this process.
	for _, e := range convert[appsv1.Deployment](t, find(objs, "Deployment", "warpdns")).Spec.Template.Spec.Containers[0].Env {
		t.Setenv(e.Name, e.Value)
	}
	bin, err := cluster.BuildOurCoreDNS(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// Upstream: nothing listens there, no traffic leaves loopback.
	coredns := cluster.RunForTest(t, bin, cluster.LocalRenderer(corefile, kubeconfig, "127.0.0.1:9"))
	vpc, inCluster := coredns.Ports.VPCAddr(), coredns.Ports.DNSAddr()
	if got := lookupA(t, vpc, "stg-api.platform.svc.cluster.local."); !slices.Equal(got, slices.Sorted(slices.Values(demo.APIReadyIPs))) {
		t.Errorf("VPC listener: stg-api.platform = %v, want the ready pod IPs %v", got, demo.APIReadyIPs)
	}
	if got := lookupA(t, inCluster, "api.platform.svc.cluster.local."); !slices.Equal(got, []string{demo.APIClusterIP}) {
		t.Errorf("in-cluster listener: api.platform = %v, want the ClusterIP %s", got, demo.APIClusterIP)
	}
}

func lookupA(t *testing.T, server, name string) []string {
	return cluster.Addresses(exchange(t, server, name, dns.TypeA).Answer)
}

// assertTokenCannotReadSecretsOrWrite uses the ServiceAccount's own token, as
// a compromised pod would: reading a Secret and every kind of write must be
// Forbidden.
func assertTokenCannotReadSecretsOrWrite(ctx context.Context, t *testing.T, c *cluster.Cluster, token string) {
	t.Helper()
	config := rest.CopyConfig(c.RESTConfig)
	config.BearerToken, config.BearerTokenFile = token, ""
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "warpdns-rbac-probe", Namespace: "default"}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
	for what, err := range map[string]error{
		"list secrets in kube-system": errOf(client.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})),
		"create a configmap":          errOf(client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})),
		"update a service":            errOf(client.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{})),
		"delete endpointslices":       client.DiscoveryV1().EndpointSlices("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}),
		"create a pod":                errOf(client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("with the ServiceAccount's token, %s: %v, want Forbidden", what, err)
		}
	}
	if _, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("with the ServiceAccount's token, listing services failed: %v", err)
	}
}

// errOf is the error of a call that also returns a value.
func errOf[T any](_ T, err error) error { return err }
