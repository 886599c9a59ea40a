// Package modgraph checks that our coredns binary is compiled from upstream
// CoreDNS v1.15.0's module graph plus our own module: no test or tool
// dependency (kustomize, the image builder, HCL, Helm, plot) may raise the
// version of a module that ends up in the binary, or the binary would not be
// upstream's code with two plugins added.
package modgraph

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warpdns/warpdns/test/cluster"
)

// ourModule is the one module our binary may have that upstream's has not.
const ourModule = "github.com/warpdns/warpdns"

func TestBinaryModulesAreUpstreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ours, err := cluster.BuildOurCoreDNS(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	upstream, err := cluster.UpstreamCoreDNSBinary(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ourMods, err := binaryModules(ctx, ours)
	if err != nil {
		t.Fatal(err)
	}
	upstreamMods, err := binaryModules(ctx, upstream)
	if err != nil {
		t.Fatal(err)
	}
	diffs := moduleDiffs(ourMods, upstreamMods)
	if len(diffs) > 0 {
		t.Errorf("our coredns (%s) is not built from upstream v%s's modules; fix the root go.mod (go mod tidy) or move the dependency to the test or tools module:\n  %s",
			ours, strings.TrimPrefix(cluster.UpstreamCoreDNS, "v"), strings.Join(diffs, "\n  "))
	}
	t.Logf("%d modules in ours, %d in upstream's", len(ourMods), len(upstreamMods))
}

// binaryModules reads `go version -m` of a binary: module path -> version,
// for the main module ("mod" line) and every dependency ("dep"), with the
// replacement's version where a module is replaced ("=>" line).
func binaryModules(ctx context.Context, bin string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "go", "version", "-m", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("go version -m %s: %w", bin, err)
	}
	return parseVersionM(string(out)), nil
}

func parseVersionM(out string) map[string]string {
	mods := map[string]string{}
	var last string
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "mod", "dep":
			last = fields[1]
			mods[last] = ""
			if len(fields) >= 3 {
				mods[last] = fields[2]
			}
		case "=>":
			if last != "" && len(fields) >= 3 {
				mods[last] = fields[1] + " " + fields[2]
			}
		}
	}
	return mods
}

// moduleDiffs lists, sorted, every module of ours whose version differs
// from upstream's or that upstream's binary does not have, except our own.
func moduleDiffs(ours, upstream map[string]string) []string {
	var diffs []string
	for path, version := range ours {
		if path == ourModule {
			continue
		}
		switch want, ok := upstream[path]; {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s %s: not in upstream's binary", path, version))
		case want != version:
			diffs = append(diffs, fmt.Sprintf("%s %s: upstream's has %s", path, version, want))
		}
	}
	slices.Sort(diffs)
	return diffs
}

func TestModuleDiffs(t *testing.T) {
	out := `bin/coredns: go1.26.8
	path	github.com/warpdns/warpdns/cmd/coredns
	mod	github.com/warpdns/warpdns	(devel)	
	dep	github.com/coredns/coredns	v1.15.0	h1:x=
	dep	github.com/klauspost/compress	v1.19.2	h1:y=
	dep	sigs.k8s.io/kustomize/api	v0.21.2	h1:z=
	dep	example.com/replaced	v1.0.0
	=>	example.com/fork	v1.0.1	h1:w=
	build	CGO_ENABLED=0
`
	upstream := map[string]string{
		"github.com/coredns/coredns":    "v1.15.0",
		"github.com/klauspost/compress": "v1.19.1",
		"example.com/replaced":          "v1.0.0",
	}
	got := moduleDiffs(parseVersionM(out), upstream)
	want := []string{
		"example.com/replaced example.com/fork v1.0.1: upstream's has v1.0.0",
		"github.com/klauspost/compress v1.19.2: upstream's has v1.19.1",
		"sigs.k8s.io/kustomize/api v0.21.2: not in upstream's binary",
	}
	if !slices.Equal(got, want) {
		t.Errorf("moduleDiffs:\n got %q\nwant %q", got, want)
	}
}
