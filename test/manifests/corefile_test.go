package manifests

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/diff"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

var update = flag.Bool("update", false, "rewrite the Corefile copies of the kustomize bases and the chart from Corefile.example (make manifests-corefiles)")

// One Corefile source: Corefile.example. `make run`, the integration tests
// and the e2e run it as it is (envalias stg). What is deployed is
// renderCorefile's output: Corefile.example with `envalias {$WARPDNS_ENV}`,
// which CoreDNS fills in from the Deployment's environment variable
// WARPDNS_ENV, so that the ConfigMap is the same for every environment and
// the environment is one value in the Deployment. The Helm chart carries a
// copy of Corefile.example (charts/warpdns/files) and renders it in a
// template; kustomize refuses files outside a kustomization's directory
// (symlinks included), so the two bases hold a copy too; all three are
// checked here (TestCorefileSources says why copies).

// envaliasLine finds the ENV of a Corefile's (first) envalias directive.
var envaliasLine = regexp.MustCompile(`(?m)^\s+envalias (\S+)`)

const (
	exampleEnvalias = "\n    envalias stg\n"
	exampleKeys     = "\n.:53 cluster.local:5353 {\n"
	envPlaceholder  = "{$WARPDNS_ENV}"
)

// corefileValues are the values a deployed Corefile may differ in.
type corefileValues struct {
	domain  string // envalias' domain form, "" for none
	vpcPort int    // the VPC listener's port, 0 for 5353
	// The acl's `allow net` networks (chart: acl.networks; kustomize: an
	// overlay Corefile with only that line changed); nil for
	// Corefile.example's.
	aclNetworks []string
	// More server blocks after Corefile.example's (chart: extraServers;
	// kustomize: appended to an overlay Corefile), "" for none.
	extraBlocks string
}

// aclAllowLine is the acl's `allow net NETWORKS...` line: the one line of
// Corefile.example a cluster's networks change (docs/deploy.md, "Who may
// query").
var aclAllowLine = regexp.MustCompile(`(?m)^(\s+allow net) (.+)$`)

// aclNetworksOf returns the networks of a Corefile's `allow net` line.
func aclNetworksOf(t testing.TB, corefile string) []string {
	t.Helper()
	m := aclAllowLine.FindAllStringSubmatch(corefile, -1)
	if len(m) != 1 {
		t.Fatalf("expected one `allow net` line in the Corefile, found %d", len(m))
	}
	return strings.Fields(m[0][2])
}

// renderCorefile is the deployed Corefile for v: what the kustomize bases
// carry and charts/warpdns/templates/_helpers.tpl (warpdns.corefile) renders.
func renderCorefile(t testing.TB, example string, v corefileValues) string {
	t.Helper()
	if !strings.Contains(example, exampleEnvalias) || !strings.Contains(example, exampleKeys) {
		t.Fatalf("Corefile.example: expected the lines `%s` and `%s`", strings.TrimSpace(exampleEnvalias), strings.TrimSpace(exampleKeys))
	}
	envalias := "\n    envalias " + envPlaceholder + "\n"
	out := example
	if v.domain != "" {
		envalias = "\n    envalias " + envPlaceholder + " {\n        domain " + v.domain + "\n    }\n"
		out = strings.Replace(out, exampleKeys, "\n.:53 cluster.local:5353 "+envPlaceholder+"."+v.domain+":5353 {\n", 1)
	}
	out = strings.Replace(out, exampleEnvalias, envalias, 1)
	if v.aclNetworks != nil {
		aclNetworksOf(t, out) // exactly one line to change
		out = aclAllowLine.ReplaceAllString(out, "${1} "+strings.Join(v.aclNetworks, " "))
	}
	if v.vpcPort != 0 && v.vpcPort != 5353 {
		port := strconv.Itoa(v.vpcPort)
		out = regexp.MustCompile(`(?m):5353( |$)`).ReplaceAllString(out, ":"+port+"${1}")
		out = regexp.MustCompile(`(?m)^(\s+ports) 5353$`).ReplaceAllString(out, "${1} "+port)
	}
	return out + v.extraBlocks
}

// expandEnv is what CoreDNS runs: the placeholder replaced by env.
func expandEnv(corefile, env string) string {
	return strings.ReplaceAll(corefile, envPlaceholder, env)
}

// corefileFor is Corefile.example as a cluster of environment env runs it:
// the envalias ENV and, with a domain, envalias' domain form and the server
// block key ENV.DOMAIN:5353 (docs/deploy.md, Local Domain Fallback).
func corefileFor(example, env, domain string) string {
	out := strings.Replace(example, exampleEnvalias, "\n    envalias "+env+"\n", 1)
	if domain != "" {
		out = strings.Replace(out, "\n    envalias "+env+"\n", "\n    envalias "+env+" {\n        domain "+domain+"\n    }\n", 1)
		out = vpcKey.ReplaceAllString(out, "${1} "+env+"."+domain+":5353 {")
	}
	return out
}

var (
	vpcKey      = regexp.MustCompile(`(?m)^(\.:53 cluster\.local:5353) \{$`)
	domainBlock = regexp.MustCompile(`(?m)^    envalias \S+ \{\n        domain (\S+)\n    \}$`)
)

func readExample(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Corefile.example"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestCorefiles: the kustomize bases carry renderCorefile(Corefile.example)
// byte for byte, the chart carries Corefile.example itself (a copy, not a
// symlink: a packaged or vendored chart holds no file outside itself; its
// template makes the substitutions), and no overlay carries a Corefile of
// its own unless it is the same with its domain form or its acl networks
// (`make manifests-corefiles` rewrites the copies after Corefile.example
// changes).
func TestCorefiles(t *testing.T) {
	root := repoRoot(t)
	example := readExample(t)
	copies, err := filepath.Glob(filepath.Join(root, "manifests", "*", "*", "Corefile"))
	if err != nil {
		t.Fatal(err)
	}
	copies = append(copies, filepath.Join(chartDir(t), "files", "Corefile.example"))
	bases := 0
	for _, p := range copies {
		rel, _ := filepath.Rel(root, p)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var v corefileValues
		var want string
		switch {
		case strings.HasPrefix(rel, "charts"+string(filepath.Separator)):
			want = example
		case strings.HasPrefix(rel, filepath.Join("manifests", "base")):
			bases++
			want = renderCorefile(t, example, v)
		default:
			if v = corefileCopyValues(t, example, string(data)); v.domain == "" && v.aclNetworks == nil && v.extraBlocks == "" {
				t.Errorf("%s: an overlay needs no Corefile of its own (the base's says envalias %s; set WARPDNS_ENV in the Deployment instead)", rel, envPlaceholder)
			}
			want = renderCorefile(t, example, v)
		}
		if string(data) == want {
			continue
		}
		if *update {
			if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: rewritten from Corefile.example", rel)
			continue
		}
		t.Errorf("%s is not Corefile.example with `envalias %s` (domain %q, acl networks %q, server blocks after it); run `make manifests-corefiles` after changing Corefile.example\n%s",
			rel, envPlaceholder, v.domain, v.aclNetworks, lineDiff(want, string(data)))
	}
	if bases != len(ways) {
		t.Errorf("found %d Corefiles under manifests/base, want one per way (%d)", bases, len(ways))
	}
}

// corefileCopyValues reads what an overlay's Corefile says it changes (its
// domain form, its acl networks), so that renderCorefile can tell whether
// the copy is Corefile.example with exactly those changes.
func corefileCopyValues(t testing.TB, example, corefile string) corefileValues {
	t.Helper()
	var v corefileValues
	if d := domainBlock.FindStringSubmatch(corefile); d != nil {
		v.domain = d[1]
	}
	if nets := aclNetworksOf(t, corefile); !slices.Equal(nets, aclNetworksOf(t, example)) {
		v.aclNetworks = nets
	}
	// What follows the first server block (Corefile.example has one).
	if end := strings.Index(corefile, "\n}\n"); end >= 0 {
		v.extraBlocks = corefile[end+3:]
	}
	return v
}

// TestCorefileACLChange: an overlay's Corefile may change the acl networks
// (docs/deploy.md, "Who may query") and add server blocks after
// Corefile.example's (stub zones), and change nothing else with them.
func TestCorefileACLChange(t *testing.T) {
	example := readExample(t)
	base := renderCorefile(t, example, corefileValues{})
	nets := "10.0.0.0/8 2600:1f14:abc:de00::/56 fc00::/7 127.0.0.0/8 ::1/128"
	acl := aclAllowLine.ReplaceAllString(base, "${1} "+nets)
	for _, tc := range []struct {
		name, corefile string
		accepted       bool
	}{
		{"the acl networks", acl, true},
		{"the acl networks and the cache", strings.Replace(acl, "cache 30 {", "cache 300 {", 1), false},
		{"the acl networks and the plugin order", strings.Replace(acl, "    loop\n    reload\n", "    reload\n    loop\n", 1), false},
		{"the acl networks and a stub zone", acl + stubServerBlock("corp.example.com", "10.0.0.2"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := corefileCopyValues(t, example, tc.corefile)
			if !slices.Equal(v.aclNetworks, strings.Fields(nets)) {
				t.Fatalf("read acl networks %q, want %q", v.aclNetworks, nets)
			}
			if got := renderCorefile(t, example, v) == tc.corefile; got != tc.accepted {
				t.Errorf("accepted %v, want %v", got, tc.accepted)
			}
		})
	}
}

// checkDeployedCorefile: a kustomize build or chart render deploys a Corefile
// that is Corefile.example but for the values (environment, domain, acl
// networks, port), and
// its Deployment sets the environment it needs. A drift, say an edit to a copy
// or to the chart's template, fails here.
func checkDeployedCorefile(t *testing.T, example string, objs []*unstructured.Unstructured, v corefileValues, wantEnv string) {
	t.Helper()
	_, corefile := corefileConfigMap(t, objs)
	if corefile == "" {
		t.Fatal("no ConfigMap with a Corefile")
	}
	if want := renderCorefile(t, example, v); corefile != want {
		t.Errorf("the deployed Corefile drifted from Corefile.example:\n%s", lineDiff(want, corefile))
	}
	env := warpdnsEnv(t, objs)
	if len(env) != 1 || env[0] != wantEnv {
		t.Fatalf("the Deployments set WARPDNS_ENV %q, want once %q", env, wantEnv)
	}
	if got := envaliasLine.FindStringSubmatch(expandEnv(corefile, wantEnv)); got == nil || got[1] != wantEnv {
		t.Errorf("CoreDNS would run envalias %v, want %s", got, wantEnv)
	}
	if v.vpcPort == 0 && v.domain == "" && v.aclNetworks == nil && v.extraBlocks == "" && expandEnv(corefile, wantEnv) != corefileFor(example, wantEnv, "") {
		t.Error("with its environment filled in, the deployed Corefile is not Corefile.example for that environment")
	}
}

// corefileConfigMap is the ConfigMap that carries the Corefile (way 1's
// coredns-warpdns or way 2's warpdns) and its Corefile.
func corefileConfigMap(t *testing.T, objs []*unstructured.Unstructured) (*unstructured.Unstructured, string) {
	t.Helper()
	for _, name := range []string{"coredns-warpdns", "warpdns"} {
		if cm := find(objs, "ConfigMap", name); cm != nil {
			corefile, _, _ := unstructured.NestedString(cm.Object, "data", "Corefile")
			return cm, corefile
		}
	}
	t.Fatal("no ConfigMap coredns-warpdns or warpdns")
	return nil, ""
}

// lineDiff is a unified diff of two texts, line by line.
func lineDiff(want, got string) string {
	return diff.Diff(strings.Split(want, "\n"), strings.Split(got, "\n"))
}

// TestCorefileDomainForm: the Local Domain Fallback edit docs/deploy.md
// describes, as corefileFor makes it (the warpcheck test runs the same).
func TestCorefileDomainForm(t *testing.T) {
	got := corefileFor(readExample(t), "prd", "k8s.example.com")
	for _, want := range []string{
		"\n.:53 cluster.local:5353 prd.k8s.example.com:5353 {\n",
		"\n    envalias prd {\n        domain k8s.example.com\n    }\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the domain form of Corefile.example lacks %q:\n%s", want, got)
		}
	}
	if d := domainBlock.FindStringSubmatch(got); d == nil || d[1] != "k8s.example.com" {
		t.Errorf("domainBlock does not find the domain in %q", got)
	}
}

// TestCorefileSources: why the chart and the kustomize bases carry copies
// of Corefile.example. The chart must render wherever it is used: from this
// repository, as the .tgz `helm package` makes, and as a vendored copy of
// its directory (`cp -R`, a git subtree), which a symlink out of the chart
// would leave dangling (Helm's loader evaluates every symlink it walks,
// helm.sh/helm/v4 internal/sympath/walk.go). Kustomize's default load
// restrictions refuse a file from outside the kustomization's directory,
// symlinked or not, as `kubectl apply -k` would.
func TestCorefileSources(t *testing.T) {
	example := readExample(t)
	chartCopy := filepath.Join(chartDir(t), "files", "Corefile.example")
	if fi, err := os.Lstat(chartCopy); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("charts/warpdns/files/Corefile.example must be a regular file (a copy of Corefile.example), not %v (%v)", fi.Mode(), err)
	}

	// The packaged chart and a vendored copy render the same Corefile.
	vals := chartValues(t, chartCase{"gke", "standalone"})
	want := renderCorefile(t, example, corefileValues{})
	pkg := action.NewPackage()
	pkg.Destination = t.TempDir()
	tgz, err := pkg.Run(chartDir(t), nil)
	if err != nil {
		t.Fatalf("helm package: %v", err)
	}
	vendored := filepath.Join(t.TempDir(), "warpdns")
	if out, err := exec.Command("cp", "-R", chartDir(t), vendored).CombinedOutput(); err != nil {
		t.Fatalf("cp -R: %v: %s", err, out)
	}
	for what, path := range map[string]string{"helm package's " + filepath.Base(tgz): tgz, "a vendored copy (cp -R)": vendored} {
		ch, err := loader.Load(path)
		if err != nil {
			t.Errorf("%s: loading: %v", what, err)
			continue
		}
		objs, err := renderChart(ch, vals)
		if err != nil {
			t.Errorf("%s: rendering: %v", what, err)
			continue
		}
		if _, corefile := corefileConfigMap(t, objs); corefile != want {
			t.Errorf("%s renders another Corefile:\n%s", what, lineDiff(want, corefile))
		}
	}

	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	err = os.CopyFS(dir, fstest.MapFS{
		"Corefile":                {Data: []byte(example)},
		"base/kustomization.yaml": {Data: []byte("configMapGenerator:\n  - name: warpdns\n    files:\n      - Corefile\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../Corefile", filepath.Join(base, "Corefile")); err != nil {
		t.Fatal(err)
	}
	_, err = krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), base)
	if err == nil || !strings.Contains(err.Error(), "is not in or below") {
		t.Errorf("kustomize accepted a Corefile symlinked from outside the kustomization (%v): the bases could link instead of copying", err)
	}
}
