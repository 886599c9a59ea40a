// Package plugincfg reads plugin.cfg, the file that lists the plugins compiled
// into our coredns binary in execution order. Both the code generator in
// cmd/coredns and the test that guards the generated order use it.
package plugincfg

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// upstreamPluginPath is where a bare plugin name ("cache:cache") lives.
const upstreamPluginPath = "github.com/coredns/coredns/plugin/"

// Plugin is one line of plugin.cfg.
type Plugin struct {
	Name       string // the directive, as written in a Corefile
	ImportPath string // the Go package that registers it
}

// ReadFile parses the plugin.cfg at path.
func ReadFile(path string) ([]Plugin, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads "name:package" lines; blank lines and lines starting with # are
// skipped. A package without a dot in its first element is an upstream plugin.
func Parse(r io.Reader) ([]Plugin, error) {
	var plugins []Plugin
	seen := map[string]bool{}
	scanner := bufio.NewScanner(r)
	for lineNo := 1; scanner.Scan(); lineNo++ {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, pkg, ok := strings.Cut(line, ":")
		if !ok || name == "" || pkg == "" {
			return nil, fmt.Errorf("plugin.cfg:%d: want name:package, got %q", lineNo, line)
		}
		if seen[name] {
			return nil, fmt.Errorf("plugin.cfg:%d: duplicate plugin %q", lineNo, name)
		}
		seen[name] = true
		if !strings.Contains(pkg, "/") {
			pkg = upstreamPluginPath + pkg
		}
		plugins = append(plugins, Plugin{Name: name, ImportPath: pkg})
	}
	return plugins, scanner.Err()
}

// Names returns the directives in order.
func Names(plugins []Plugin) []string {
	names := make([]string, len(plugins))
	for i, p := range plugins {
		names[i] = p.Name
	}
	return names
}
