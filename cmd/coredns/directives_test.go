package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/warpdns/warpdns/internal/plugincfg"
)

func readPluginCfg(t *testing.T) []plugincfg.Plugin {
	t.Helper()
	plugins, err := plugincfg.ReadFile(filepath.Join("..", "..", "plugin.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	return plugins
}

// TestDirectivesFollowPluginCfg fails when plugin.cfg was edited without
// rerunning `go generate ./cmd/coredns`, or when the order the server uses
// is not the generated one.
func TestDirectivesFollowPluginCfg(t *testing.T) {
	want := plugincfg.Names(readPluginCfg(t))
	if !slices.Equal(directives, want) {
		t.Fatalf("zdirectives.go is stale: run `go generate ./cmd/coredns`\ngenerated: %v\nplugin.cfg: %v", directives, want)
	}
	original := dnsserver.Directives
	t.Cleanup(func() { dnsserver.Directives = original })
	if err := dnsserver.SetDirectives(directives); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dnsserver.Directives, want) {
		t.Fatalf("the server's directive order %v differs from plugin.cfg", dnsserver.Directives)
	}
}

// TestEveryPluginIsCompiledIn checks that zplugin.go imports every plugin of
// plugin.cfg: each one must have registered itself with caddy.
func TestEveryPluginIsCompiledIn(t *testing.T) {
	registered := map[string]bool{}
	for _, name := range caddy.ListPlugins()["others"] {
		registered[strings.TrimPrefix(name, "dns.")] = true
	}
	for _, p := range readPluginCfg(t) {
		if p.Name == "on" { // an event hook, listed apart by caddy
			continue
		}
		if !registered[p.Name] {
			t.Errorf("plugin %q (%s) is in plugin.cfg but not registered: run `go generate ./cmd/coredns`", p.Name, p.ImportPath)
		}
	}
}

// TestUpstreamOrderPlusOurs pins the placement the design relies on: all of
// upstream v1.15.0's plugins in upstream's order, envalias right after
// rewrite, headlessonly right before kubernetes.
func TestUpstreamOrderPlusOurs(t *testing.T) {
	names := plugincfg.Names(readPluginCfg(t))
	at := func(name string) int { return slices.Index(names, name) }
	if at("envalias") != at("rewrite")+1 {
		t.Errorf("envalias must come right after rewrite: %v", names)
	}
	if at("headlessonly") != at("kubernetes")-1 {
		t.Errorf("headlessonly must come right before kubernetes: %v", names)
	}
	upstream := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "envalias" || n == "headlessonly" })
	cfg, err := os.ReadFile(filepath.Join(upstreamDir(t), "plugin.cfg"))
	if err != nil {
		t.Skipf("upstream plugin.cfg not in the module cache: %v", err)
	}
	upstreamPlugins, err := plugincfg.Parse(strings.NewReader(string(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	if want := plugincfg.Names(upstreamPlugins); !slices.Equal(upstream, want) {
		t.Errorf("plugin.cfg without our two plugins differs from upstream v1.15.0's\nours:     %v\nupstream: %v", upstream, want)
	}
}

func upstreamDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/coredns/coredns").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestWantsVersion(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"-version"}, true},
		{[]string{"--version"}, true},
		{[]string{"-conf", "x", "-version"}, true},
		{[]string{"-conf", "x"}, false},
		{[]string{"--", "-version"}, false},
	} {
		if got := wantsVersion(c.args); got != c.want {
			t.Errorf("wantsVersion(%v) = %v, want %v", c.args, got, c.want)
		}
	}
}
