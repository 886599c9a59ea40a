package manifests

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/warpdns/warpdns/test/cluster"
)

// The values an operator of the coredns/helm chart expects (its values.yaml
// has priorityClassName, tolerations, nodeSelector, image.pullSecrets,
// podAnnotations, podLabels, service.annotations and servers), here under
// the names of the pod spec where they differ.

// stubServer is an extraServers entry: a stub zone forwarded elsewhere.
func stubServer(zone, upstream string) map[string]any {
	return map[string]any{
		"zones": []any{map[string]any{"zone": zone}},
		"plugins": []any{
			map[string]any{"name": "errors"},
			map[string]any{"name": "cache", "parameters": int64(30)},
			map[string]any{"name": "forward", "parameters": ". " + upstream, "configBlock": "max_concurrent 1000\nexpire 10s"},
		},
	}
}

// stubServerBlock is what the Corefile says for stubServer(zone, upstream).
func stubServerBlock(zone, upstream string) string {
	return "\n" + zone + ":53 {\n    errors\n    cache 30\n    forward . " + upstream +
		" {\n        max_concurrent 1000\n        expire 10s\n    }\n}\n"
}

// operatorValues sets every pod, Service and Corefile value of this file.
func operatorValues() map[string]any {
	return map[string]any{
		"priorityClassName": "warpdns-critical",
		"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "dns", "effect": "NoSchedule"}},
		"nodeSelector":      map[string]any{"node.example.com/pool": "system"},
		"imagePullSecrets":  []any{map[string]any{"name": "regcred"}},
		"podAnnotations":    map[string]any{"example.com/owner": "platform"},
		"podLabels":         map[string]any{"team": "platform"},
		"extraServers":      []any{stubServer("corp.example.com", "10.0.0.2")},
	}
}

// TestHelmOperatorValues renders both ways with every operator value set, and
// with none: the standalone Deployment carries them (its own node selector
// kubernetes.io/os: linux kept, its selector labels unchanged); the replace
// mode's partial Deployment carries exactly the ones set, so that kubeadm's
// tolerations and node selector stay unless the operator gives others; the
// Corefile gets the extra server block; kube-dns-nlb the extra annotation.
func TestHelmOperatorValues(t *testing.T) {
	ch := loadChart(t)
	example := readExample(t)
	for _, mode := range []string{"standalone", "replace"} {
		t.Run(mode, func(t *testing.T) {
			vals := chartValues(t, chartCase{"eks-stg", mode}, operatorValues())
			lb := vals["loadBalancer"].(map[string]any)
			lb["annotations"] = map[string]any{"external-dns.alpha.kubernetes.io/hostname": "dns.stg.example.com"}
			objs := render(t, ch, vals)
			name := map[string]string{"standalone": "warpdns", "replace": "coredns"}[mode]
			d := convert[appsv1.Deployment](t, find(objs, "Deployment", name))
			pod := d.Spec.Template
			wantSelector := map[string]string{"kubernetes.io/os": "linux", "node.example.com/pool": "system"}
			if mode == "replace" {
				wantSelector = map[string]string{"node.example.com/pool": "system"}
			}
			for what, ok := range map[string]bool{
				"priorityClassName warpdns-critical": pod.Spec.PriorityClassName == "warpdns-critical",
				"the toleration": len(pod.Spec.Tolerations) == 1 && pod.Spec.Tolerations[0].Key == "dedicated" &&
					pod.Spec.Tolerations[0].Effect == corev1.TaintEffectNoSchedule,
				fmt.Sprintf("node selector %v", wantSelector): maps.Equal(pod.Spec.NodeSelector, wantSelector),
				"imagePullSecrets regcred":                    len(pod.Spec.ImagePullSecrets) == 1 && pod.Spec.ImagePullSecrets[0].Name == "regcred",
				"the pod annotation":                          pod.Annotations["example.com/owner"] == "platform",
				"the pod label":                               pod.Labels["team"] == "platform",
			} {
				if !ok {
					t.Errorf("Deployment %s: no %s", name, what)
				}
			}
			if d.Spec.Selector != nil && d.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "warpdns" {
				t.Errorf("the selector changed: %v", d.Spec.Selector)
			}
			if find(objs, "ResourceQuota", "warpdns-critical-pods") != nil {
				t.Error("a ResourceQuota for a priority class that is no system-* one")
			}
			if svc := find(objs, "Service", "kube-dns-nlb"); svc.GetAnnotations()["external-dns.alpha.kubernetes.io/hostname"] != "dns.stg.example.com" ||
				svc.GetAnnotations()["service.beta.kubernetes.io/aws-load-balancer-scheme"] != "internal" {
				t.Errorf("kube-dns-nlb annotations %v: want the extra one beside the platform's", svc.GetAnnotations())
			}
			_, corefile := corefileConfigMap(t, objs)
			if want := renderCorefile(t, example, corefileValues{}) + stubServerBlock("corp.example.com", "10.0.0.2"); corefile != want {
				t.Errorf("the Corefile with extraServers:\n%s", lineDiff(want, corefile))
			}

			// The defaults: kubeadm's priority, nothing else in the patch.
			objs = render(t, ch, chartValues(t, chartCase{"eks-stg", mode}))
			d = convert[appsv1.Deployment](t, find(objs, "Deployment", name))
			pod = d.Spec.Template
			if pod.Spec.PriorityClassName != "system-cluster-critical" {
				t.Errorf("default priorityClassName %q, want system-cluster-critical (kubeadm's)", pod.Spec.PriorityClassName)
			}
			quota := find(objs, "ResourceQuota", "warpdns-critical-pods")
			if mode == "replace" {
				if pod.Spec.Tolerations != nil || pod.Spec.NodeSelector != nil || pod.Spec.ImagePullSecrets != nil || pod.Labels != nil || pod.Annotations != nil {
					t.Errorf("the default replace patch sets fields kubeadm's Deployment has its own values for: %+v", pod)
				}
				if quota != nil {
					t.Error("a ResourceQuota in kube-system")
				}
				return
			}
			if quota == nil {
				t.Fatal("standalone with system-cluster-critical: no ResourceQuota admitting the class (GKE refuses the pods without)")
			}
			q := convert[corev1.ResourceQuota](t, quota)
			if q.Namespace != d.Namespace || q.Spec.ScopeSelector == nil || len(q.Spec.ScopeSelector.MatchExpressions) != 1 ||
				!slices.Equal(q.Spec.ScopeSelector.MatchExpressions[0].Values, []string{"system-cluster-critical"}) {
				t.Errorf("ResourceQuota %s/%s: %+v, want the PriorityClass scope system-cluster-critical in %s", q.Namespace, q.Name, q.Spec, d.Namespace)
			}
		})
	}
}

// TestHelmOperatorValuesSchema: the mistakes values.schema.json refuses.
func TestHelmOperatorValuesSchema(t *testing.T) {
	ch := loadChart(t)
	for _, tc := range []struct {
		name string
		set  map[string]any
		want string
	}{
		{"a pod label that is a selector label", map[string]any{"podLabels": map[string]any{"app.kubernetes.io/name": "dns"}}, "/podLabels"},
		{"a toleration operator that does not exist", map[string]any{"tolerations": []any{map[string]any{"key": "a", "operator": "In"}}}, "/tolerations/0/operator"},
		{"a pull secret as a string", map[string]any{"imagePullSecrets": []any{"regcred"}}, "/imagePullSecrets/0"},
		{"a priority class that is no name", map[string]any{"priorityClassName": "System Critical"}, "/priorityClassName"},
		{"a stub zone for the root", map[string]any{"extraServers": []any{stubServer(".", "10.0.0.2")}}, "/extraServers/0/zones/0/zone"},
		{"plugin parameters that open a block", map[string]any{"extraServers": []any{map[string]any{
			"zones":   []any{map[string]any{"zone": "corp.example.com"}},
			"plugins": []any{map[string]any{"name": "forward", "parameters": ". 10.0.0.2 {"}},
		}}}, "/extraServers/0/plugins/0/parameters"},
		{"an annotation the chart sets for the platform", map[string]any{"loadBalancer.annotations": map[string]any{"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"}},
			"/loadBalancer/annotations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := chartValues(t, chartCase{"eks-stg", "replace"})
			for path, value := range tc.set {
				if err := unstructured.SetNestedField(v, value, strings.Split(path, ".")...); err != nil {
					t.Fatal(err)
				}
			}
			_, err := renderChart(ch, v)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "values don't meet the specifications of the schema") {
				t.Fatalf("want values.schema.json to refuse it at %s, got %v", tc.want, err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestHelmServiceAnnotationKeys: values.schema.json refuses, in
// loadBalancer.annotations, every annotation the chart sets on kube-dns-nlb
// for some platform (a second value for one key in the rendered YAML would be
// taken silently). A new platform annotation in the template must be added
// to that list.
func TestHelmServiceAnnotationKeys(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir(t), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			LoadBalancer struct {
				Properties struct {
					Annotations struct {
						Properties map[string]bool `json:"properties"`
					} `json:"annotations"`
				} `json:"properties"`
			} `json:"loadBalancer"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	refused := slices.Collect(maps.Keys(schema.Properties.LoadBalancer.Properties.Annotations.Properties))
	ch := loadChart(t)
	values := []map[string]any{ipv6OnlyValues(t)}
	for _, c := range chartCases(t) {
		values = append(values, chartValues(t, c))
	}
	aks := chartValues(t, chartCase{"aks", "standalone"})
	aks["loadBalancer"].(map[string]any)["aks"] = map[string]any{"ipv4": "10.224.0.53", "ipv6": "fd00:224::53", "subnet": "aks-subnet"}
	values = append(values, aks)
	for _, v := range values {
		for _, o := range render(t, ch, v) {
			if o.GetKind() != "Service" {
				continue
			}
			for k := range o.GetAnnotations() {
				if !slices.Contains(refused, k) {
					t.Errorf("%s (platform %v) carries %s, which values.schema.json does not refuse in loadBalancer.annotations", describe(o), v["platform"], k)
				}
			}
		}
	}
}

// TestHelmExtraServers runs the Corefile with an extraServers stub zone in our
// coredns: the stub zone is forwarded to its upstream on the in-cluster
// listener, cluster.local still answers there, and the VPC listener (which
// serves cluster.local only) refuses the stub zone.
func TestHelmExtraServers(t *testing.T) {
	env := cluster.SharedEnv(t)
	upstream, stop, err := cluster.StubUpstream("www.corp.example.com. 60 IN A 192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// The apiserver's own Service: the shared control plane's demo world
	// belongs to the tests that seed it.
	kubernetes, err := env.Client.CoreV1().Services("default").Get(t.Context(), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vals := chartValues(t, chartCase{"gke", "standalone"}, map[string]any{"extraServers": []any{stubServer("corp.example.com", upstream)}})
	_, corefile := corefileConfigMap(t, render(t, loadChart(t), vals))
	corefile = expandEnv(corefile, "stg")
	coredns := cluster.RunForTest(t, env.OurBin, func(p cluster.Ports) (string, error) {
		text, err := cluster.RenderLocal(corefile, p.Local(env.Kubeconfig, cluster.NoUpstream))
		// The stub zone's key, :53 in a pod, on this run's in-cluster port.
		return strings.Replace(text, "\ncorp.example.com:53 {\n", fmt.Sprintf("\ncorp.example.com:%d {\n    bind 127.0.0.1\n", p.DNS), 1), err
	})
	inCluster, vpc := coredns.Ports.DNSAddr(), coredns.Ports.VPCAddr()
	if got := lookupA(t, inCluster, "www.corp.example.com."); !slices.Equal(got, []string{"192.0.2.10"}) {
		t.Errorf("in-cluster listener: www.corp.example.com = %v, want the stub zone's 192.0.2.10", got)
	}
	if got := lookupA(t, inCluster, "kubernetes.default.svc.cluster.local."); !slices.Equal(got, []string{kubernetes.Spec.ClusterIP}) {
		t.Errorf("in-cluster listener: kubernetes.default = %v, want the ClusterIP %s", got, kubernetes.Spec.ClusterIP)
	}
	if r := exchange(t, vpc, "www.corp.example.com.", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("VPC listener: www.corp.example.com: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
}
