package manifests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/miekg/dns"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	labelsk8s "k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/warpdns/warpdns/test/cluster"
)

// cloudflaredMetrics are the cloudflared metrics manifests/monitoring uses,
// with their labels, as cloudflare/cloudflared defines them at tag 2026.8.2
// (commit 733bfb939963e150dcf5c4faddb1603f744fbc98; the newest tag in the
// snapshot at hand, our image is 2026.9.1). cloudflared cannot run here, so
// its names are checked against this list instead of a scrape.
var cloudflaredMetrics = map[string][]string{
	// supervisor/metrics.go: namespace cloudflared, subsystem tunnel, a Gauge.
	"cloudflared_tunnel_ha_connections": nil,
	// quic/v3/metrics.go: namespace cloudflared, subsystem udp, label
	// quic.ConnectionIndexMetricLabel = "conn_index" (quic/metrics.go).
	"cloudflared_udp_active_flows": {"conn_index"},
	"cloudflared_udp_failed_flows": {"conn_index"},
	"cloudflared_udp_total_flows":  {"conn_index"},
}

// onlyInFailure are selectors that match no series of a healthy coredns,
// by design; their metric and label names are still checked.
var onlyInFailure = map[string]string{
	`coredns_kubernetes_rest_client_requests_total{code!~"2.."}`: "failed API requests only",
}

var promql = parser.NewParser(parser.Options{})

func monitoringFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "manifests", "monitoring", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// ruleExprs parses the PrometheusRule's groups with Prometheus' own rule
// file parser (as `promtool check rules` does) and returns every expression.
func ruleExprs(t testing.TB) map[string]string {
	t.Helper()
	var rule struct {
		Kind string `json:"kind"`
		Spec struct {
			Groups json.RawMessage `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(monitoringFile(t, "prometheusrule.yaml"), &rule); err != nil {
		t.Fatal(err)
	}
	if rule.Kind != "PrometheusRule" {
		t.Fatalf("prometheusrule.yaml: kind %q", rule.Kind)
	}
	groups, err := yaml.JSONToYAML([]byte(`{"groups":` + string(rule.Spec.Groups) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	rgs, errs := rulefmt.Parse(groups, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("prometheusrule.yaml: %v", err)
	}
	if rgs == nil {
		t.FailNow()
	}
	exprs := map[string]string{}
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("rule %q: an alert with labels.severity, annotations.summary and description", r.Alert+r.Record)
			}
			exprs["rule "+r.Alert] = r.Expr
		}
	}
	return exprs
}

// dashboardExprs loads dashboard.json with the Grafana Foundation SDK's
// strict decoder (unknown fields and wrong types fail, as Grafana's schema
// would reject them) and returns every PromQL expression of its panels.
func dashboardExprs(t testing.TB) map[string]string {
	t.Helper()
	plugins.RegisterDefaultPlugins()
	raw := monitoringFile(t, "dashboard.json")
	var d dashboard.Dashboard
	if err := sdkError(d.UnmarshalJSONStrict(raw)); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if err := sdkError(d.Validate()); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if d.Uid == nil || *d.Uid == "" || d.Title == nil {
		t.Error("dashboard.json: a fixed uid (links survive a re-import) and a title")
	}
	// The SDK's strict decoders (v0.0.22) return an empty error list as an
	// error for a well-formed panel or query, and their callers then drop
	// it: strict decoding reports what is wrong, the documented
	// json.Unmarshal reads the panels and their queries.
	var loose dashboard.Dashboard
	if err := json.Unmarshal(raw, &loose); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	var panels []dashboard.Panel
	for _, p := range loose.Panels {
		if p.Panel != nil {
			panels = append(panels, *p.Panel)
		}
		if p.RowPanel != nil {
			panels = append(panels, p.RowPanel.Panels...)
		}
	}
	exprs := map[string]string{}
	for _, p := range panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", deref(p.Title))
		}
		for i, target := range p.Targets {
			q, ok := target.(*prometheus.Dataquery)
			if !ok {
				t.Errorf("panel %q target %d is %T, not a Prometheus query (datasource type prometheus)", deref(p.Title), i, target)
				continue
			}
			exprs[fmt.Sprintf("panel %q %s", deref(p.Title), deref(q.RefId))] = q.Expr
		}
	}
	if len(exprs) == 0 {
		t.Fatal("dashboard.json: no queries")
	}
	return exprs
}

// sdkError: the SDK's strict decoder returns its error list as an error even
// when the list is empty (a typed nil).
func sdkError(err error) error {
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// grafanaVariables replaces the dashboard variables the expressions use
// with what Grafana substitutes, so that Prometheus' parser can read them.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "2m", "${__rate_interval}", "2m")

// selectors parses every expression and returns its vector selectors,
// keyed by their text.
func selectors(t testing.TB, exprs map[string]string) map[string][]*labels.Matcher {
	t.Helper()
	all := map[string][]*labels.Matcher{}
	for where, e := range exprs {
		expr, err := promql.ParseExpr(grafanaVariables.Replace(e))
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				all[vs.String()] = vs.LabelMatchers
			}
			return nil
		})
	}
	return all
}

// TestMonitoringQueriesParse: the rules parse with Prometheus' rule parser,
// the dashboard loads with Grafana's schema, and every query of both parses.
func TestMonitoringQueriesParse(t *testing.T) {
	t.Parallel()
	rules := ruleExprs(t)
	for _, alert := range []string{"WarpdnsVPCListenerErrors", "WarpdnsServiceWithoutReadyEndpoints",
		"WarpdnsKubernetesAPIErrors", "WarpdnsKubernetesNotSynced", "CloudflaredTunnelDown"} {
		if _, ok := rules["rule "+alert]; !ok {
			t.Errorf("prometheusrule.yaml: no alert %s", alert)
		}
	}
	if len(selectors(t, rules)) == 0 || len(selectors(t, dashboardExprs(t))) == 0 {
		t.Error("no selectors")
	}
}

// TestMonitoringTargets: the ServiceMonitor and PodMonitors select the
// Services and pods our manifests (and kubeadm) create, on a port that is
// there, so that Prometheus finds a target at all.
func TestMonitoringTargets(t *testing.T) {
	t.Parallel()
	fsys, _ := loadManifests(t)
	objs := build(t, fsys, "/manifests/monitoring")
	for _, o := range objs {
		if o.GetNamespace() == "" {
			t.Errorf("%s has no namespace", describe(o))
		}
	}
	cm := find(objs, "ConfigMap", "warpdns-dashboard")
	if cm == nil || cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Error("ConfigMap warpdns-dashboard with label grafana_dashboard: \"1\" (the Grafana chart's dashboard sidecar)")
	} else if data, _, _ := unstructured.NestedString(cm.Object, "data", "warpdns.json"); data != string(monitoringFile(t, "dashboard.json")) {
		t.Error("ConfigMap warpdns-dashboard: data warpdns.json differs from dashboard.json")
	}

	for _, c := range []struct {
		kind, name, endpoints string
		targets               []*unstructured.Unstructured // where its targets are
		port                  int32
	}{
		{"ServiceMonitor", "warpdns-coredns", "endpoints", readObjects(t, filepath.Join("testdata", "kubeadm-coredns.yaml")), 9153},
		{"PodMonitor", "warpdns-standalone", "podMetricsEndpoints", build(t, fsys, "/manifests/base/standalone"), 9153},
		{"PodMonitor", "cloudflared", "podMetricsEndpoints", build(t, fsys, "/manifests/cloudflared"), 2000},
	} {
		m := find(objs, c.kind, c.name)
		if m == nil {
			t.Errorf("no %s %s", c.kind, c.name)
			continue
		}
		namespaces, _, _ := unstructured.NestedStringSlice(m.Object, "spec", "namespaceSelector", "matchNames")
		matchLabels, _, _ := unstructured.NestedStringMap(m.Object, "spec", "selector", "matchLabels")
		endpoints, _, _ := unstructured.NestedSlice(m.Object, "spec", c.endpoints)
		if len(endpoints) != 1 {
			t.Errorf("%s %s: want one endpoint", c.kind, c.name)
			continue
		}
		portName, _ := endpoints[0].(map[string]any)["port"].(string)
		selector := labelsk8s.SelectorFromSet(matchLabels)
		found := false
		for _, o := range c.targets {
			if !slices.Contains(namespaces, o.GetNamespace()) {
				continue
			}
			switch {
			case c.kind == "ServiceMonitor" && o.GetKind() == "Service" && selector.Matches(labelsk8s.Set(o.GetLabels())):
				for _, p := range convert[corev1.Service](t, o).Spec.Ports {
					found = found || p.Name == portName && p.TargetPort.IntVal == c.port
				}
			case c.kind == "PodMonitor" && o.GetKind() == "Deployment":
				d := convert[appsv1.Deployment](t, o)
				if !selector.Matches(labelsk8s.Set(d.Spec.Template.Labels)) {
					continue
				}
				for _, ctr := range d.Spec.Template.Spec.Containers {
					for _, p := range ctr.Ports {
						found = found || p.Name == portName && p.ContainerPort == c.port
					}
				}
			}
		}
		if !found {
			t.Errorf("%s %s (namespaces %v, labels %v, port %q) finds no target with port %d", c.kind, c.name, namespaces, matchLabels, portName, c.port)
		}
	}
}

// TestMonitoringDryRun server-side dry-run applies manifests/monitoring to the
// local kube-apiserver with the vendored Prometheus Operator CRDs, failing on
// any error or warning (an unknown field is a warning).
func TestMonitoringDryRun(t *testing.T) {
	ctx, c, a := prepare(t)
	fsys, _ := loadManifests(t)
	objs := build(t, fsys, "/manifests/monitoring")
	if err := c.EnsureNamespace(ctx, objs[0].GetNamespace()); err != nil {
		t.Fatal(err)
	}
	dryRunAll(t, ctx, a, objs)
}

// TestMonitoringMetricsExist runs our coredns with Corefile.example against
// the local apiserver, sends the queries that make each plugin count
// (an envalias alias, a headlessonly answer, a Service without ready pods,
// REFUSED on the VPC listener, SERVFAIL from an unreachable upstream),
// scrapes its metrics and checks that every selector of the rules and the
// dashboard names a metric and labels it exports and matches a series.
func TestMonitoringMetricsExist(t *testing.T) {
	c := cluster.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := cluster.BuildOurCoreDNS(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// Upstream: nothing listens there, forwarded names get SERVFAIL.
	coredns := cluster.RunForTest(t, bin, cluster.LocalRenderer(readExample(t), c.Kubeconfig, "127.0.0.1:9"))
	inCluster, vpc := coredns.Ports.DNSAddr(), coredns.Ports.VPCAddr()

	const ns = "monitoring-metrics"
	if err := c.EnsureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	for name, eps := range map[string][]cluster.Endpoint{
		"api":  {{IP: "10.1.0.10", Pod: "api-0"}},
		"down": {{IP: "10.1.0.20", Pod: "down-0", NotReady: true}},
	} {
		svc, err := c.CreateService(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
				Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetEndpoints(ctx, svc, eps, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The kubernetes plugin sees the Service through its watch, shortly.
	alias := "stg-api." + ns + ".svc.cluster.local."
	for deadline := time.Now().Add(30 * time.Second); exchange(t, vpc, alias, dns.TypeA).Rcode != dns.RcodeSuccess; {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no answer after 30s", alias)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, q := range []struct {
		addr, name string
		rcode      int
	}{
		{vpc, alias, dns.RcodeSuccess},                                           // envalias + headlessonly
		{vpc, "api." + ns + ".svc.cluster.local.", dns.RcodeSuccess},             // headlessonly
		{vpc, "down." + ns + ".svc.cluster.local.", dns.RcodeNameError},          // no ready endpoint (as a headless Service)
		{vpc, "example.org.", dns.RcodeRefused},                                  // outside the VPC listener's zone
		{inCluster, "example.org.", dns.RcodeServerFailure},                      // upstream down
		{inCluster, "example.org.", dns.RcodeServerFailure},                      // again: from the cache
		{inCluster, "api." + ns + ".svc.cluster.local.", dns.RcodeSuccess},       // stock answer
		{inCluster, "nothing." + ns + ".svc.cluster.local.", dns.RcodeNameError}, // stock NXDOMAIN
	} {
		if r := exchange(t, q.addr, q.name, dns.TypeA); r.Rcode != q.rcode {
			t.Errorf("%s A to %s: %s, want %s", q.name, q.addr, dns.RcodeToString[r.Rcode], dns.RcodeToString[q.rcode])
		}
	}

	series := scrape(t, coredns.Ports.MetricsURL(), map[string]string{
		// In a pod the listeners have no bind: their server label is
		// "dns://:53" and "dns://:5353" (Server.Addr).
		"dns://" + inCluster: "dns://:53", "dns://" + vpc: "dns://:5353",
	})
	exprs := ruleExprs(t)
	maps.Copy(exprs, dashboardExprs(t))
	for text, matchers := range selectors(t, exprs) {
		var name string
		for _, m := range matchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			t.Errorf("%s: selector without a metric name", text)
			continue
		}
		if known, ok := cloudflaredMetrics[name]; ok {
			for _, m := range matchers {
				if m.Name != labels.MetricName && !slices.Contains(known, m.Name) {
					t.Errorf("%s: cloudflared's %s has no label %q", text, name, m.Name)
				}
			}
			continue
		}
		family := series[name]
		if len(family) == 0 {
			t.Errorf("%s: our coredns exports no %s", text, name)
			continue
		}
		labelNames := map[string]bool{}
		matched := false
		for _, s := range family {
			s.Range(func(l labels.Label) { labelNames[l.Name] = true })
			matched = matched || labels.Selector(matchers).Matches(s)
		}
		for _, m := range matchers {
			if !labelNames[m.Name] {
				t.Errorf("%s: %s has no label %q (it has %v)", text, name, m.Name, keys(labelNames))
			}
		}
		if _, ok := onlyInFailure[text]; !matched && !ok {
			t.Errorf("%s: no series of our coredns matches", text)
		}
	}
}

func exchange(t *testing.T, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s to %s: %v", name, addr, err)
	}
	return r
}

// scrape reads a Prometheus text exposition and returns every series' labels
// (the metric name as __name__; histograms and summaries as the series
// Prometheus stores for them, with expfmt.ExtractSamples), with server label
// values renamed.
func scrape(t *testing.T, url string, servers map[string]string) map[string][]labels.Labels {
	t.Helper()
	families, err := cluster.Scrape(http.DefaultClient, url)
	if err != nil {
		t.Fatal(err)
	}
	samples, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{}, slices.Collect(maps.Values(families))...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]labels.Labels{}
	for _, s := range samples {
		l := map[string]string{}
		for k, v := range s.Metric {
			l[string(k)] = string(v)
		}
		if renamed, ok := servers[l["server"]]; ok {
			l["server"] = renamed
		}
		out[l[labels.MetricName]] = append(out[l[labels.MetricName]], labels.FromMap(l))
	}
	return out
}
