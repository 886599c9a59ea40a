package manifests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/kube"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warpdns/warpdns/test/cluster"
)

// criticalPodsAdmission is the ResourceQuota admission configuration of an
// API server that limits the system-* priority classes to namespaces with a
// ResourceQuota matching them, as GKE's does (pods elsewhere fail with
// "insufficient quota to match these scopes: [{PriorityClass In
// [system-node-critical system-cluster-critical]}]",
// open-policy-agent/gatekeeper#1120), in the format of
// https://kubernetes.io/docs/concepts/policy/resource-quotas/#limit-priority-class-consumption-by-default
// (k8s.io/apiserver v0.37.2 pkg/admission/plugin/resourcequota/apis/resourcequota/v1).
const criticalPodsAdmission = `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: ResourceQuota
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: ResourceQuotaConfiguration
      limitedResources:
        - resource: pods
          matchScopes:
            - scopeName: PriorityClass
              operator: In
              values: [system-node-critical, system-cluster-critical]
`

// TestHelmLifecycle installs, upgrades and uninstalls the chart with Helm 4
// (as a Go module) against a control plane of its own that limits the
// system-* priority classes as GKE does, in the order docs/deploy.md gives:
//
//   - replace mode on a cluster without kube-system/coredns (k3s started with
//     --disable coredns) stops with a message that says so;
//   - replace mode on kubeadm's CoreDNS: install, upgrade twice, uninstall;
//     everything the remaining Deployment's pod template references still
//     exists (the ConfigMap with its key, the ServiceAccount, the priority
//     class), and a pod made from it is admitted, so new CoreDNS pods start;
//   - standalone with cloudflared, its namespace and token Secret made first:
//     the install takes neither, the pods of both templates are admitted
//     (the critical priority class included), uninstall leaves the Secret.
//
// No controller-manager runs: the test makes the pods from the templates as
// the ReplicaSet controller would (server-side dry-run), and fills in
// ResourceQuota status as the resourcequota controller would.
func TestHelmLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	admission := filepath.Join(dir, "admission.yaml")
	if err := os.WriteFile(admission, []byte(criticalPodsAdmission), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Start(ctx, cluster.Options{Dir: filepath.Join(dir, "cluster"), Logf: t.Logf,
		APIServerArgs: []string{"--admission-control-config-file=" + admission}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	a := newApplier(t, c)
	ch := loadChart(t)

	// GKE's own kube-system quota for its critical pods (gatekeeper#1120).
	createQuota(ctx, t, c, "kube-system", "gcp-critical-pods", "system-node-critical", "system-cluster-critical")

	replace := chartValues(t, chartCase{"eks-stg", "replace"})
	t.Run("replace without kube-system/coredns", func(t *testing.T) {
		_, err := helmInstall(ctx, t, c, ch, "kube-system", "warpdns", replace)
		_ = helmUninstall(t, c, "kube-system", "warpdns") // a failed release, if one was recorded
		if err == nil || !strings.Contains(err.Error(), "there is no Deployment kube-system/coredns to patch") {
			t.Fatalf("want the chart to say there is no kube-system/coredns to patch, got %v", err)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("replace: install, upgrade twice, uninstall", func(t *testing.T) {
		for _, o := range readObjects(t, filepath.Join("testdata", "kubeadm-coredns.yaml")) {
			ri, err := a.resource(o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ri.Create(ctx, o, metav1.CreateOptions{FieldManager: "kubeadm"}); err != nil {
				t.Fatalf("creating kubeadm's %s: %v", describe(o), err)
			}
		}
		// docs/deploy.md: save the stock Deployment before installing.
		stock, err := c.Client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := helmInstall(ctx, t, c, ch, "kube-system", "warpdns", replace); err != nil {
			t.Fatalf("helm install: %v", err)
		}
		second := chartValues(t, chartCase{"eks-stg", "replace"}, map[string]any{"env": "prd"})
		third := chartValues(t, chartCase{"eks-stg", "replace"}, map[string]any{"env": "prd",
			"extraServers": []any{stubServer("corp.example.com", "10.0.0.2")}, "podAnnotations": map[string]any{"example.com/rev": "3"}})
		for _, vals := range []map[string]any{second, third} {
			if err := helmUpgrade(ctx, t, c, ch, "kube-system", "warpdns", vals); err != nil {
				t.Fatalf("helm upgrade: %v", err)
			}
		}
		_, wantCorefile := corefileConfigMap(t, render(t, ch, third))
		if err := helmUninstall(t, c, "kube-system", "warpdns"); err != nil {
			t.Fatalf("helm uninstall: %v", err)
		}

		d, err := c.Client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the Deployment kube-system/coredns is gone after uninstall: %v", err)
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(img, "registry.example.com/warpdns:") {
			t.Errorf("after uninstall coredns runs %s, want the kept warpdns image", img)
		}
		checkTemplateRefs(ctx, t, c, d)
		if cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns-warpdns", metav1.GetOptions{}); err == nil && cm.Data["Corefile"] != wantCorefile {
			t.Errorf("the kept ConfigMap coredns-warpdns is not the last upgrade's Corefile:\n%s", lineDiff(wantCorefile, cm.Data["Corefile"]))
		}
		admitPod(ctx, t, c, d)
		for kind, gone := range map[string]error{
			"Service kube-dns-nlb":  errOf(c.Client.CoreV1().Services("kube-system").Get(ctx, "kube-dns-nlb", metav1.GetOptions{})),
			"NetworkPolicy warpdns": errOf(c.Client.NetworkingV1().NetworkPolicies("kube-system").Get(ctx, "warpdns", metav1.GetOptions{})),
		} {
			if !apierrors.IsNotFound(gone) {
				t.Errorf("%s after uninstall: %v, want it deleted", kind, gone)
			}
		}

		// Back to stock (docs/deploy.md, Rollback): the saved copy, without
		// its resourceVersion, through `kubectl replace` (a PUT).
		stock.ResourceVersion, stock.ManagedFields = "", nil
		back, err := c.Client.AppsV1().Deployments("kube-system").Update(ctx, stock, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("kubectl replace -f coredns-stock.yaml: %v", err)
		}
		if !apiequality.Semantic.DeepEqual(back.Spec.Template, stock.Spec.Template) {
			t.Errorf("after the replace the pod template is not kubeadm's again: image %s, ConfigMap %s",
				back.Spec.Template.Spec.Containers[0].Image, back.Spec.Template.Spec.Volumes[0].ConfigMap.Name)
		}
		checkTemplateRefs(ctx, t, c, back)
	})

	t.Run("standalone with cloudflared, the Secret first", func(t *testing.T) {
		// docs/deploy.md step 6, before helm install.
		if _, err := a.apply(ctx, cloudflaredNamespace(), false); err != nil {
			t.Fatal(err)
		}
		// The serviceaccount controller's part: the namespace's default
		// ServiceAccount, which cloudflared's pods run as.
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "cloudflared"}}
		if _, err := c.Client.CoreV1().ServiceAccounts("cloudflared").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cloudflared-token", Namespace: "cloudflared"},
			StringData: map[string]string{"token": "not-a-real-token"}}
		if _, err := c.Client.CoreV1().Secrets("cloudflared").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		vals := chartValues(t, chartCase{"gke", "standalone"}, map[string]any{"cloudflared": enabled()})
		// Without --take-ownership, as docs/deploy.md installs standalone.
		if _, err := helmInstall(ctx, t, c, ch, "kube-system", "warpdns-gke", vals); err != nil {
			t.Fatalf("helm install after creating cloudflared's namespace and Secret: %v", err)
		}
		// The resourcequota controller's part: the quotas' status.
		quotas, err := c.Client.CoreV1().ResourceQuotas("warpdns").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range quotas.Items {
			fillQuotaStatus(ctx, t, c, &quotas.Items[i])
		}
		for _, ref := range [][2]string{{"warpdns", "warpdns"}, {"cloudflared", "cloudflared"}} {
			d, err := c.Client.AppsV1().Deployments(ref[0]).Get(ctx, ref[1], metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkTemplateRefs(ctx, t, c, d)
			admitPod(ctx, t, c, d)
		}
		if err := helmUninstall(t, c, "kube-system", "warpdns-gke"); err != nil {
			t.Fatalf("helm uninstall: %v", err)
		}
		// No namespace controller runs to empty a deleted namespace: that it
		// is not being deleted is what keeps the Secret.
		if ns, err := c.Client.CoreV1().Namespaces().Get(ctx, "cloudflared", metav1.GetOptions{}); err != nil || ns.DeletionTimestamp != nil {
			t.Errorf("namespace cloudflared after uninstall: %v (deleting since %v), want it kept with its token Secret", err, ns.GetDeletionTimestamp())
		}
	})
}

// helmConfig is Helm's action configuration for namespace of c's cluster,
// with release records in Secrets (Helm's default driver).
func helmConfig(t *testing.T, c *cluster.Cluster, namespace string) *action.Configuration {
	t.Helper()
	settings := cli.New()
	settings.KubeConfig = c.Kubeconfig
	settings.SetNamespace(namespace)
	cfg := action.NewConfiguration()
	if err := cfg.Init(settings.RESTClientGetter(), namespace, "secret"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// helmInstall is `helm install` (server-side apply, Helm 4's default) as
// docs/deploy.md installs each mode: the replace mode with --take-ownership
// --force-conflicts (kube-system/coredns is the cluster's).
func helmInstall(ctx context.Context, t *testing.T, c *cluster.Cluster, ch *chart.Chart, namespace, name string, vals map[string]any) (any, error) {
	install := action.NewInstall(helmConfig(t, c, namespace))
	install.ReleaseName, install.Namespace = name, namespace
	replace := vals["mode"] == "replace"
	install.TakeOwnership, install.ForceConflicts = replace, replace
	install.WaitStrategy = kube.HookOnlyStrategy
	return install.RunWithContext(ctx, ch, vals)
}

// helmUpgrade is `helm upgrade --force-conflicts`.
func helmUpgrade(ctx context.Context, t *testing.T, c *cluster.Cluster, ch *chart.Chart, namespace, name string, vals map[string]any) error {
	upgrade := action.NewUpgrade(helmConfig(t, c, namespace))
	upgrade.Namespace, upgrade.ForceConflicts = namespace, true
	upgrade.WaitStrategy = kube.HookOnlyStrategy
	_, err := upgrade.RunWithContext(ctx, name, ch, vals)
	return err
}

// helmUninstall is `helm uninstall`.
func helmUninstall(t *testing.T, c *cluster.Cluster, namespace, name string) error {
	uninstall := action.NewUninstall(helmConfig(t, c, namespace))
	uninstall.WaitStrategy = kube.HookOnlyStrategy
	_, err := uninstall.Run(name)
	return err
}

// checkTemplateRefs: every object d's pod template names exists, as the
// kubelet and admission need it to start the pods: ConfigMaps and Secrets of
// volumes (with the keys their items name), env and envFrom, the
// ServiceAccount, the image pull Secrets and the PriorityClass.
func checkTemplateRefs(ctx context.Context, t *testing.T, c *cluster.Cluster, d *appsv1.Deployment) {
	t.Helper()
	ns, pod := d.Namespace, d.Spec.Template.Spec
	core := c.Client.CoreV1()
	configMap := func(name, why string, keys ...string) {
		cm, err := core.ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("%s/%s: ConfigMap %s (%s): %v", ns, d.Name, name, why, err)
			return
		}
		for _, k := range keys {
			if _, ok := cm.Data[k]; !ok {
				t.Errorf("%s/%s: ConfigMap %s (%s) has no key %s", ns, d.Name, name, why, k)
			}
		}
	}
	secret := func(name, why string) {
		if _, err := core.Secrets(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("%s/%s: Secret %s (%s): %v", ns, d.Name, name, why, err)
		}
	}
	for _, v := range pod.Volumes {
		why := "volume " + v.Name
		switch {
		case v.ConfigMap != nil:
			var keys []string
			for _, it := range v.ConfigMap.Items {
				keys = append(keys, it.Key)
			}
			configMap(v.ConfigMap.Name, why, keys...)
		case v.Secret != nil:
			secret(v.Secret.SecretName, why)
		}
	}
	for _, ctr := range pod.Containers {
		for _, e := range ctr.Env {
			if f := e.ValueFrom; f != nil && f.ConfigMapKeyRef != nil {
				configMap(f.ConfigMapKeyRef.Name, "env "+e.Name, f.ConfigMapKeyRef.Key)
			} else if f != nil && f.SecretKeyRef != nil {
				secret(f.SecretKeyRef.Name, "env "+e.Name)
			}
		}
		for _, e := range ctr.EnvFrom {
			if e.ConfigMapRef != nil {
				configMap(e.ConfigMapRef.Name, "envFrom")
			} else if e.SecretRef != nil {
				secret(e.SecretRef.Name, "envFrom")
			}
		}
	}
	for _, s := range pod.ImagePullSecrets {
		secret(s.Name, "imagePullSecrets")
	}
	if sa := pod.ServiceAccountName; sa != "" {
		if _, err := core.ServiceAccounts(ns).Get(ctx, sa, metav1.GetOptions{}); err != nil {
			t.Errorf("%s/%s: ServiceAccount %s: %v", ns, d.Name, sa, err)
		}
	}
	if pc := pod.PriorityClassName; pc != "" {
		if _, err := c.Client.SchedulingV1().PriorityClasses().Get(ctx, pc, metav1.GetOptions{}); err != nil {
			t.Errorf("%s/%s: PriorityClass %s: %v", ns, d.Name, pc, err)
		}
	}
}

// admitPod creates (server-side dry-run) a pod from d's template, as the
// ReplicaSet controller would: admission (the priority class, its quota, the
// ServiceAccount, Pod Security) must let it in.
func admitPod(ctx context.Context, t *testing.T, c *cluster.Cluster, d *appsv1.Deployment) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: d.Name + "-", Namespace: d.Namespace,
			Labels: d.Spec.Template.Labels, Annotations: d.Spec.Template.Annotations},
		Spec: d.Spec.Template.Spec,
	}
	if _, err := c.Client.CoreV1().Pods(d.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("a pod of %s/%s is refused: %v", d.Namespace, d.Name, err)
	}
}

// createQuota creates a ResourceQuota admitting pods of these priority
// classes in namespace, its status filled in.
func createQuota(ctx context.Context, t *testing.T, c *cluster.Cluster, namespace, name string, classes ...string) {
	t.Helper()
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.ResourceQuotaSpec{
			Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1G")},
			ScopeSelector: &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
				{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: classes},
			}},
		},
	}
	q, err := c.Client.CoreV1().ResourceQuotas(namespace).Create(ctx, q, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fillQuotaStatus(ctx, t, c, q)
}

// fillQuotaStatus does what the resourcequota controller does for a new
// quota (no pods use it yet): status.hard from spec.hard, nothing used.
// Admission refuses matching pods until then ("status unknown for quota").
func fillQuotaStatus(ctx context.Context, t *testing.T, c *cluster.Cluster, q *corev1.ResourceQuota) {
	t.Helper()
	q.Status.Hard = q.Spec.Hard
	q.Status.Used = corev1.ResourceList{}
	for r := range q.Spec.Hard {
		q.Status.Used[r] = resource.MustParse("0")
	}
	if _, err := c.Client.CoreV1().ResourceQuotas(q.Namespace).UpdateStatus(ctx, q, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("ResourceQuota %s/%s status: %v", q.Namespace, q.Name, err)
	}
}
