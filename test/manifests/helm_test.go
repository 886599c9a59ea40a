package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/diff"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The chart is used as Helm 4 uses it (helm.sh/helm/v4 as a Go module: no
// helm binary is downloaded): lint, template (an install with a client-side
// dry run) and, in TestHelmDryRun, a server-side dry-run of what it renders.

// chartCase is one input of the chart: a values file in charts/warpdns/ci,
// the kustomize overlay with the same inputs, and the way to install.
type chartCase struct {
	overlay string // manifests/overlays/<overlay>, and ci/<overlay>-values.yaml
	mode    string // standalone or replace
}

func (c chartCase) name() string { return c.overlay + "/" + c.mode }

// chartCases: every ci values file (one per overlay, so every platform) in
// both ways of installing.
func chartCases(t testing.TB) []chartCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "charts", "warpdns", "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in charts/warpdns/ci: %v", err)
	}
	var cs []chartCase
	for _, f := range files {
		overlay := strings.TrimSuffix(filepath.Base(f), "-values.yaml")
		for _, mode := range []string{"replace", "standalone"} {
			cs = append(cs, chartCase{overlay, mode})
		}
	}
	return cs
}

func chartDir(t testing.TB) string { return filepath.Join(repoRoot(t), "charts", "warpdns") }

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	return ch
}

// chartValues reads ci/<overlay>-values.yaml, sets the mode and replaces the
// top-level values in set.
func chartValues(t testing.TB, c chartCase, set ...map[string]any) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "ci", c.overlay+"-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(data, &vals); err != nil {
		t.Fatalf("ci/%s-values.yaml: %v", c.overlay, err)
	}
	vals["mode"] = c.mode
	for _, m := range set {
		maps.Copy(vals, m)
	}
	return vals
}

// enabled is the value {enabled: true}.
func enabled() map[string]any { return map[string]any{"enabled": true} }

// renderChart renders the chart as `helm template` (or `helm install
// --dry-run=client`) does: values merged with the chart's defaults and
// validated against values.schema.json, then the templates.
func renderChart(ch *chart.Chart, vals map[string]any) ([]*unstructured.Unstructured, error) {
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true
	install.ReleaseName = "warpdns"
	install.Namespace = "kube-system"
	rel, err := install.RunWithContext(context.Background(), ch, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("unexpected release type %T", rel)
	}
	return decodeObjects([]byte(r.Manifest))
}

// render is renderChart that fails the test on an error.
func render(t *testing.T, ch *chart.Chart, vals map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := renderChart(ch, vals)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return objs
}

// TestHelm checks the chart with every ci values file in both ways: `helm
// lint` finds no error or warning; it renders what the kustomize overlay with
// the same inputs builds, object by object (kind, namespace, name) as decoded
// data, not text; the deployed Corefile is Corefile.example but for the
// values; and its NetworkPolicies hold in the overlay's cluster model
// (networkpolicy_test.go), cloudflared as the chart renders it.
func TestHelm(t *testing.T) {
	ch := loadChart(t)
	fsys, _ := loadManifests(t)
	example := readExample(t)
	for _, c := range chartCases(t) {
		t.Run(c.name(), func(t *testing.T) {
			lint := action.NewLint()
			lint.Namespace = "kube-system"
			res := lint.Run([]string{chartDir(t)}, chartValues(t, c))
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s: %v", m.Path, m.Err)
				}
			}
			for _, err := range res.Errors {
				t.Errorf("helm lint: %v", err)
			}

			vals := chartValues(t, c)
			objs := render(t, ch, vals)
			compareObjects(t, build(t, fsys, kustomizationFor(t, fsys, c)), objs)
			checkDeployedCorefile(t, example, objs, corefileValues{}, vals["env"].(string))
			objs = render(t, ch, chartValues(t, c, map[string]any{"cloudflared": enabled()}))
			inTheField(t, c.overlay, objs, cloudflaredPeer(t, objs))
		})
	}
	// IPv6 only (an EKS IPv6 cluster): the ipv6 component on eks-stg, with
	// the dualstack NLB the overlay adds, against the chart's ipFamilies.
	t.Run("eks-stg/ipv6-only", func(t *testing.T) {
		dir := "/manifests/overlays/eks-stg-ipv6-only"
		k := `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../eks-stg
components:
  - ../../ip-families/ipv6
patches:
  - target:
      kind: Service
      name: kube-dns-nlb
    patch: |-
      - op: add
        path: /metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-ip-address-type
        value: dualstack
      - op: add
        path: /metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-enable-prefix-for-ipv6-source-nat
        value: "on"
`
		writeFile(t, fsys, dir+"/kustomization.yaml", k)
		compareObjects(t, build(t, fsys, dir), render(t, ch, ipv6OnlyValues(t)))
	})
	// acl.networks and its kustomize input, an overlay Corefile with only
	// the acl line changed (docs/deploy.md, "Who may query"): the same objects.
	t.Run("eks-stg/acl-networks", func(t *testing.T) {
		nets := []string{"10.0.0.0/8", "2600:1f14:abc:de00::/56", "127.0.0.0/8", "::1/128"}
		v := corefileValues{aclNetworks: nets}
		dir := "/manifests/overlays/eks-stg-acl"
		k := `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../eks-stg
configMapGenerator:
  - name: coredns-warpdns
    namespace: kube-system
    behavior: replace
    files:
      - Corefile
`
		writeFile(t, fsys, dir+"/kustomization.yaml", k)
		writeFile(t, fsys, dir+"/Corefile", renderCorefile(t, example, v))
		objs := render(t, ch, chartValues(t, chartCase{"eks-stg", "replace"}, map[string]any{"acl": map[string]any{"networks": toAny(nets)}}))
		compareObjects(t, build(t, fsys, dir), objs)
		checkDeployedCorefile(t, example, objs, v, "stg")
	})
	t.Run("cloudflared", func(t *testing.T) {
		// With the Namespace, as manifests/cloudflared has it.
		values := map[string]any{"enabled": true, "createNamespace": true}
		objs := render(t, ch, chartValues(t, chartCase{"gke", "standalone"}, map[string]any{"cloudflared": values}))
		cf := slices.DeleteFunc(objs, func(o *unstructured.Unstructured) bool {
			return o.GetNamespace() != "cloudflared" && (o.GetKind() != "Namespace" || o.GetName() != "cloudflared")
		})
		compareObjects(t, build(t, fsys, "/manifests/cloudflared"), cf)
	})
	t.Run("domain and port", func(t *testing.T) {
		objs := render(t, ch, chartValues(t, chartCase{"gke", "standalone"}, map[string]any{
			"env": "prd", "domain": "k8s.example.com", "vpcListener": map[string]any{"containerPort": 5300},
		}))
		v := corefileValues{domain: "k8s.example.com", vpcPort: 5300}
		checkDeployedCorefile(t, example, objs, v, "prd")
		got := expandEnv(renderCorefile(t, example, v), "prd")
		for _, want := range []string{
			"\n.:53 cluster.local:5300 prd.k8s.example.com:5300 {\n",
			"\n    envalias prd {\n        domain k8s.example.com\n    }\n",
			"\n        ports 5300\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("the domain form with port 5300 lacks %q", want)
			}
		}
	})
}

// TestHelmValuesSchema: the mistakes values.schema.json must stop before
// anything is installed, each with a message that names the value.
func TestHelmValuesSchema(t *testing.T) {
	ch := loadChart(t)
	base := func() map[string]any { return chartValues(t, chartCase{"eks-stg", "replace"}) }
	type set = map[string]any // dotted path -> value; nil deletes
	for _, tc := range []struct {
		name string
		set  set
		want []string // every one must be in the error
	}{
		{"wrong platform name", set{"platform": "aws"}, []string{"/platform", "eks"}},
		{"no platform", set{"platform": nil}, []string{"/platform"}},
		{"eks without the fixed IPs", set{"loadBalancer.eks.privateIPv4Addresses": nil}, []string{"/loadBalancer/eks", "privateIPv4Addresses"}},
		{"eks with an empty list of fixed IPs", set{"loadBalancer.eks.privateIPv4Addresses": []any{}}, []string{"/loadBalancer/eks/privateIPv4Addresses"}},
		{"eks fixed IP that is no IPv4 address", set{"loadBalancer.eks.privateIPv4Addresses": []any{"10.0.12.353"}},
			[]string{"/loadBalancer/eks/privateIPv4Addresses/0"}},
		{"gke without the address name", set{"platform": "gke"}, []string{"/loadBalancer", "gke"}},
		{"aks without a fixed IP", set{"platform": "aks", "loadBalancer.aks": map[string]any{"subnet": "aks-subnet"}}, []string{"/loadBalancer/aks", "ipv4"}},
		{"metallb without a fixed IP", set{"platform": "metallb", "loadBalancer.metallb": map[string]any{"ips": []any{}}}, []string{"/loadBalancer/metallb/ips"}},
		{"cilium without a fixed IP", set{"platform": "cilium"}, []string{"/loadBalancer", "cilium"}},
		{"no source ranges", set{"loadBalancer.sourceRanges": []any{}}, []string{"/loadBalancer/sourceRanges"}},
		{"NetworkPolicy without the load balancer's source", set{"networkPolicy": map[string]any{"loadBalancerSources": []any{}}},
			[]string{"/networkPolicy/loadBalancerSources"}},
		{"NetworkPolicy source that is no CIDR", set{"networkPolicy": map[string]any{"loadBalancerSources": []any{"10.0.12.53"}}},
			[]string{"/networkPolicy/loadBalancerSources/0"}},
		{"env that is no DNS label", set{"env": "Stg_1"}, []string{"/env"}},
		{"wrong mode", set{"mode": "replace-kube-dns"}, []string{"/mode"}},
		{"no acl networks", set{"acl.networks": []any{}}, []string{"/acl/networks"}},
		{"acl network that is no CIDR", set{"acl.networks": []any{"10.0.0.0/8", "2001:db8:1::"}}, []string{"/acl/networks/1"}},
		{"two families on a single stack", set{"loadBalancer.ipFamilies": []any{"IPv4", "IPv6"}}, []string{"/loadBalancer/ipFamilies"}},
		// EKS runs one IP family per cluster (point 3 of issue 22): the
		// dualstack NLB, not the Service, carries IPv6 there.
		{"eks with RequireDualStack", set{"loadBalancer.ipFamilyPolicy": "RequireDualStack", "loadBalancer.ipFamilies": []any{"IPv4", "IPv6"}},
			[]string{"/loadBalancer/ipFamilyPolicy", "SingleStack"}},
		{"eks with PreferDualStack", set{"loadBalancer.ipFamilyPolicy": "PreferDualStack", "loadBalancer.ipFamilies": []any{"IPv4", "IPv6"}},
			[]string{"/loadBalancer/ipFamilyPolicy", "SingleStack"}},
		{"unknown externalTrafficPolicy", set{"loadBalancer.externalTrafficPolicy": "local"}, []string{"/loadBalancer/externalTrafficPolicy"}},
		{"eks ipAddressType that is no NLB type", set{"loadBalancer.eks.ipAddressType": "ipv6"}, []string{"/loadBalancer/eks/ipAddressType"}},
		{"affinity with an unknown field", set{"affinity": map[string]any{"podAntiAfinity": map[string]any{}}}, []string{"/affinity"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := base()
			for path, value := range tc.set {
				if fields := strings.Split(path, "."); value == nil {
					unstructured.RemoveNestedField(v, fields...)
				} else if err := unstructured.SetNestedField(v, value, fields...); err != nil {
					t.Fatal(err)
				}
			}
			_, err := renderChart(ch, v)
			if err == nil {
				t.Fatal("the chart rendered; values.schema.json should have refused these values")
			}
			t.Logf("refused: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not mention %q:\n%v", w, err)
				}
			}
			if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") {
				t.Errorf("want Helm's schema validation error, got:\n%v", err)
			}
		})
	}
	if _, err := renderChart(ch, base()); err != nil {
		t.Fatalf("ci/eks-stg-values.yaml must pass: %v", err)
	}
}

// kustomizationFor returns the kustomize directory with the same inputs as c:
// the overlay itself if it uses c's way, otherwise a copy of it in fsys that
// uses the other base (as the overlays' comments tell users to do).
func kustomizationFor(t testing.TB, fsys filesys.FileSystem, c chartCase) string {
	t.Helper()
	dir := "/manifests/overlays/" + c.overlay
	data, err := fsys.ReadFile(dir + "/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k := string(data)
	want, other := "../../base/replace-kube-dns", "../../base/standalone"
	if c.mode == "standalone" {
		want, other = other, want
	}
	if strings.Contains(k, "  - "+want+"\n") {
		return dir
	}
	if !strings.Contains(k, "  - "+other+"\n") {
		t.Fatalf("%s uses neither base", dir)
	}
	k = strings.Replace(k, "  - "+other+"\n", "  - "+want+"\n", 1)
	// A WARPDNS_ENV patch names the Deployment of its way.
	from, to := "name: coredns\n        namespace: kube-system", "name: warpdns\n        namespace: warpdns"
	if c.mode == "replace" {
		from, to = to, from
	}
	k = strings.ReplaceAll(k, from, to)
	// Way 2 has no kube-system pods to label (the overlays' comments say to
	// drop the partial Namespace).
	if c.mode == "standalone" {
		k = strings.Replace(k, "  - kube-system-namespace.yaml\n", "", 1)
	}
	copyDir := "/manifests/overlays/" + c.overlay + "-as-" + c.mode
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries { // kustomization.yaml is rewritten below
		b, err := fsys.ReadFile(dir + "/" + e)
		if err != nil {
			t.Fatal(err)
		}
		if err := fsys.WriteFile(copyDir+"/"+e, b); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, fsys, copyDir+"/kustomization.yaml", k)
	return copyDir
}

// writeFile writes an overlay's file into the in-memory copy of manifests/.
func writeFile(t testing.TB, fsys filesys.FileSystem, path, data string) {
	t.Helper()
	if err := fsys.WriteFile(path, []byte(data)); err != nil {
		t.Fatal(err)
	}
}

// helmOwn are the labels and annotations only the chart sets (Helm's release
// bookkeeping and keeping the cluster's own objects on uninstall); the
// equivalence ignores them and nothing else.
var helmOwn = map[string][]string{
	"labels":      {"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance"},
	"annotations": {"helm.sh/resource-policy"},
}

// ipv6OnlyValues are eks-stg's values with the VPC listener on IPv6 only.
func ipv6OnlyValues(t testing.TB) map[string]any {
	v := chartValues(t, chartCase{"eks-stg", "replace"})
	lb := v["loadBalancer"].(map[string]any)
	lb["ipFamilyPolicy"] = "SingleStack"
	lb["ipFamilies"] = []any{"IPv6"}
	return v
}

// compareObjects reports, per object, what kustomize (want) and the chart
// (got) render differently, ignoring Helm's own labels and annotations.
func compareObjects(t *testing.T, want, got []*unstructured.Unstructured) {
	t.Helper()
	index := func(objs []*unstructured.Unstructured) map[string]map[string]any {
		m := map[string]map[string]any{}
		for _, o := range objs {
			m[describe(o)] = normalize(t, o)
		}
		return m
	}
	w, g := index(want), index(got)
	for _, id := range keys(w) {
		if _, ok := g[id]; !ok {
			t.Errorf("%s: kustomize renders it, the chart does not", id)
		} else if !reflect.DeepEqual(w[id], g[id]) {
			t.Errorf("%s differs (- kustomize, + chart):\n%s", id, diff.Diff(w[id], g[id]))
		}
	}
	for _, id := range keys(g) {
		if _, ok := w[id]; !ok {
			t.Errorf("%s: the chart renders it, kustomize does not", id)
		}
	}
}

// normalize decodes an object as JSON data (so that numbers compare alike)
// without the fields only Helm sets.
func normalize(t *testing.T, o *unstructured.Unstructured) map[string]any {
	data, err := json.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	for field, own := range helmOwn {
		for _, k := range own {
			unstructured.RemoveNestedField(obj, "metadata", field, k)
		}
		if m, _, _ := unstructured.NestedMap(obj, "metadata", field); len(m) == 0 {
			unstructured.RemoveNestedField(obj, "metadata", field)
		}
	}
	return obj
}

// TestHelmDryRun server-side dry-run applies what the chart renders, for
// every platform and both ways, to the local kube-apiserver, as TestDryRun
// does for the kustomize builds: validation, defaulting, Pod Security
// admission and, for the replace way, the merge into kubeadm's Deployment.
func TestHelmDryRun(t *testing.T) {
	ctx, _, a := prepare(t)
	// cloudflared's namespace, made before the install as docs/deploy.md
	// says (its token Secret lives there).
	if _, err := a.apply(ctx, cloudflaredNamespace(), false); err != nil {
		t.Fatal(err)
	}
	ch := loadChart(t)
	cases := map[string]map[string]any{"eks-stg/ipv6-only": ipv6OnlyValues(t)}
	for _, cc := range chartCases(t) {
		cases[cc.name()] = chartValues(t, cc)
	}
	// The autoscalers too, once each way.
	cases["gke/standalone/autoscalers"] = chartValues(t, chartCase{"gke", "standalone"},
		map[string]any{"autoscaling": map[string]any{"hpa": enabled()}})
	cases["metallb/replace/autoscalers"] = chartValues(t, chartCase{"metallb", "replace"},
		map[string]any{"autoscaling": map[string]any{"clusterProportional": enabled()}})
	// Every operator value (values_test.go), once each way.
	cases["gke/standalone/operator-values"] = chartValues(t, chartCase{"gke", "standalone"}, operatorValues())
	cases["eks-stg/replace/operator-values"] = chartValues(t, chartCase{"eks-stg", "replace"}, operatorValues())
	for _, name := range keys(cases) {
		t.Run(name, func(t *testing.T) {
			cases[name]["cloudflared"] = enabled()
			dryRunAll(t, ctx, a, render(t, ch, cases[name]))
		})
	}
}

// cloudflaredNamespace is the namespace docs/deploy.md has the operator
// create, and label for Pod Security, before installing the chart.
func cloudflaredNamespace() *unstructured.Unstructured {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName("cloudflared")
	ns.SetLabels(map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted"})
	return ns
}

// TestHelmOptionalObjects: what the values switch on beyond the kustomize
// overlays (autoscaling, ServiceMonitor) points at the right objects.
func TestHelmOptionalObjects(t *testing.T) {
	ch := loadChart(t)
	gke := func(t *testing.T, mode string, set map[string]any) []*unstructured.Unstructured {
		return render(t, ch, chartValues(t, chartCase{"gke", mode}, set))
	}
	t.Run("hpa", func(t *testing.T) {
		objs := gke(t, "standalone", map[string]any{"autoscaling": map[string]any{"hpa": enabled()}})
		hpa := find(objs, "HorizontalPodAutoscaler", "warpdns")
		if hpa == nil {
			t.Fatal("no HorizontalPodAutoscaler")
		}
		if name, _, _ := unstructured.NestedString(hpa.Object, "spec", "scaleTargetRef", "name"); name != "warpdns" {
			t.Errorf("the HPA scales %q, want Deployment warpdns", name)
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(find(objs, "Deployment", "warpdns").Object, "spec", "replicas"); found {
			t.Error("with an HPA the Deployment must not set replicas (each upgrade would reset them)")
		}
	})
	t.Run("cluster-proportional-autoscaler", func(t *testing.T) {
		objs := gke(t, "replace", map[string]any{"autoscaling": map[string]any{"clusterProportional": enabled()}})
		d := find(objs, "Deployment", "warpdns-autoscaler")
		if d == nil {
			t.Fatal("no Deployment warpdns-autoscaler")
		}
		dep := convert[appsv1.Deployment](t, d)
		if cmd := strings.Join(dep.Spec.Template.Spec.Containers[0].Command, " "); !strings.Contains(cmd, "--target=Deployment/coredns") ||
			!strings.Contains(cmd, "--namespace=kube-system") || !strings.Contains(cmd, "--configmap=warpdns-autoscaler") {
			t.Errorf("autoscaler command %q, want it to scale kube-system/coredns from ConfigMap warpdns-autoscaler", cmd)
		}
		cm := find(objs, "ConfigMap", "warpdns-autoscaler")
		linear, _, _ := unstructured.NestedString(cm.Object, "data", "linear")
		var params map[string]any
		if err := json.Unmarshal([]byte(linear), &params); err != nil || params["coresPerReplica"] == nil || params["min"] == nil {
			t.Errorf("autoscaler parameters %q: %v", linear, err)
		}
	})
	t.Run("both autoscalers", func(t *testing.T) {
		v := chartValues(t, chartCase{"gke", "standalone"}, map[string]any{
			"autoscaling": map[string]any{"hpa": enabled(), "clusterProportional": enabled()}})
		if _, err := renderChart(ch, v); err == nil || !strings.Contains(err.Error(), "either hpa or clusterProportional") {
			t.Errorf("want a clear refusal of two autoscalers, got %v", err)
		}
	})
	for _, mode := range []string{"standalone", "replace"} {
		t.Run("serviceMonitor/"+mode, func(t *testing.T) {
			objs := gke(t, mode, map[string]any{"serviceMonitor": enabled()})
			sm := find(objs, "ServiceMonitor", "warpdns")
			if sm == nil {
				t.Fatal("no ServiceMonitor")
			}
			sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(eps) != 1 || eps[0].(map[string]any)["port"] != "metrics" {
				t.Errorf("ServiceMonitor endpoints %v, want port metrics", eps)
			}
			if mode == "replace" {
				// kubeadm's kube-dns Service: k8s-app=kube-dns, port metrics 9153.
				if sel["k8s-app"] != "kube-dns" || len(sel) != 1 || sm.GetNamespace() != "kube-system" {
					t.Errorf("ServiceMonitor selects %v in %s, want kube-system's kube-dns", sel, sm.GetNamespace())
				}
				return
			}
			svc := find(objs, "Service", "warpdns-metrics")
			if svc == nil || svc.GetNamespace() != sm.GetNamespace() {
				t.Fatal("no Service warpdns-metrics beside the ServiceMonitor")
			}
			for k, v := range sel {
				if svc.GetLabels()[k] != v {
					t.Errorf("ServiceMonitor selects %v, Service warpdns-metrics has labels %v", sel, svc.GetLabels())
				}
			}
			podSel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
			ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
			if podSel["app.kubernetes.io/name"] != "warpdns" || len(ports) != 1 || ports[0].(map[string]any)["name"] != "metrics" {
				t.Errorf("Service warpdns-metrics: selector %v ports %v, want the warpdns pods' metrics port", podSel, ports)
			}
		})
	}
}
