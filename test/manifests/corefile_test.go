package manifests

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the Corefile copies under manifests/ from Corefile.example (make manifests-corefiles)")

// envaliasLine finds the ENV of a Corefile's (first) envalias directive.
var envaliasLine = regexp.MustCompile(`(?m)^\s+envalias (\S+)`)

// corefileFor is Corefile.example for a cluster of environment env: the
// envalias ENV and the resolver policy regex in the comment above it. With
// a domain (envalias' domain form, for Local Domain Fallback, as
// docs/deploy.md describes it) the envalias line gets the domain and the
// server block the key ENV.DOMAIN:5353.
func corefileFor(example, env, domain string) string {
	out := strings.Replace(example, "    envalias stg\n", "    envalias "+env+"\n", 1)
	out = strings.ReplaceAll(out, `(^|\.)stg-`, `(^|\.)`+env+`-`)
	if domain != "" {
		out = strings.Replace(out, "    envalias "+env+"\n", "    envalias "+env+" {\n        domain "+domain+"\n    }\n", 1)
		out = vpcKey.ReplaceAllString(out, "${1} "+env+"."+domain+":5353 {")
	}
	return out
}

var (
	vpcKey      = regexp.MustCompile(`(?m)^(\.:53 cluster\.local:5353) \{$`)
	domainBlock = regexp.MustCompile(`(?m)^    envalias \S+ \{\n        domain (\S+)\n    \}$`)
)

// TestCorefiles checks that the ConfigMaps carry Corefile.example: the bases
// byte for byte, each overlay with only its environment changed. Kustomize
// cannot read a file outside a kustomization's directory, so these are
// copies; `make manifests-corefiles` (go test -run TestCorefiles -update)
// rewrites them after Corefile.example changes.
func TestCorefiles(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "Corefile.example"))
	if err != nil {
		t.Fatal(err)
	}
	example := string(data)
	if m := envaliasLine.FindStringSubmatch(example); m == nil || m[1] != "stg" || !strings.Contains(example, "\n    envalias stg\n") {
		t.Fatalf("Corefile.example: expected the line `    envalias stg`")
	}
	if !vpcKey.MatchString(example) {
		t.Fatalf("Corefile.example: expected the server block keys `.:53 cluster.local:5353 {`")
	}

	copies, err := filepath.Glob(filepath.Join(root, "manifests", "*", "*", "Corefile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(copies) < 2 {
		t.Fatalf("found only %d Corefiles under manifests/", len(copies))
	}
	for _, p := range copies {
		rel, _ := filepath.Rel(root, p)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		env, domain := "stg", ""
		if strings.HasPrefix(rel, filepath.Join("manifests", "overlays")) {
			m := envaliasLine.FindStringSubmatch(string(data))
			if m == nil {
				t.Errorf("%s: no envalias line", rel)
				continue
			}
			env = m[1]
			if d := domainBlock.FindStringSubmatch(string(data)); d != nil {
				domain = d[1]
			}
		}
		want := corefileFor(example, env, domain)
		if string(data) == want {
			continue
		}
		if *update {
			if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: rewritten from Corefile.example (envalias %s %s)", rel, env, domain)
			continue
		}
		t.Errorf("%s is not Corefile.example with envalias %s (domain %q); run `make manifests-corefiles` after changing Corefile.example\n%s",
			rel, env, domain, firstDifference(want, string(data)))
	}
}

func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  want " + wl + "\n  got  " + gl
		}
	}
	return ""
}

// TestCorefileDomainForm: the Local Domain Fallback edit docs/deploy.md
// describes is accepted (and kept by -update), and is what the warpcheck
// test runs.
func TestCorefileDomainForm(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Corefile.example"))
	if err != nil {
		t.Fatal(err)
	}
	got := corefileFor(string(data), "prd", "k8s.example.com")
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
