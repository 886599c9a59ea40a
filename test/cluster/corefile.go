package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// LocalCorefile says where a Corefile written for a cluster (Corefile.example)
// should listen and look when it runs on this machine instead.
type LocalCorefile struct {
	InClusterPort int    // replaces :53, the kube-dns listener
	VPCPort       int    // replaces :5353, the kube-dns-nlb listener
	HealthPort    int    // health plugin (:8080 in a pod)
	ReadyPort     int    // ready plugin (:8181 in a pod)
	MetricsPort   int    // prometheus plugin (:9153 in a pod)
	Kubeconfig    string // the kubernetes plugin uses it instead of in-cluster config
	Upstream      string // replaces /etc/resolv.conf as forward's target
	// Bind lists the addresses both listeners bind; 127.0.0.1 when empty.
	// Health, ready and metrics stay on 127.0.0.1.
	Bind []string
}

// corefileRewrite is one change RenderLocal makes; each must apply at least
// once, so that an edit to Corefile.example that this code does not
// understand fails loudly instead of running something else.
type corefileRewrite struct {
	what    string
	pattern *regexp.Regexp
	replace func(l LocalCorefile, match []string) string
}

var corefileRewrites = []corefileRewrite{
	{"the server block keys .:53 cluster.local:5353", regexp.MustCompile(`(?m)^\.:53 ([a-z0-9.-]+):5353 \{$`),
		func(l LocalCorefile, m []string) string {
			return fmt.Sprintf(".:%d %s:%d {\n    bind %s", l.InClusterPort, m[1], l.VPCPort, strings.Join(l.Bind, " "))
		}},
	{"the VPC listener port 5353 in plugin options", regexp.MustCompile(`(?m)^(\s+ports) 5353$`),
		func(l LocalCorefile, m []string) string { return fmt.Sprintf("%s %d", m[1], l.VPCPort) }},
	{"health", regexp.MustCompile(`(?m)^(\s+)health( \{)?$`),
		func(l LocalCorefile, m []string) string {
			return fmt.Sprintf("%shealth 127.0.0.1:%d%s", m[1], l.HealthPort, m[2])
		}},
	{"ready", regexp.MustCompile(`(?m)^(\s+)ready$`),
		func(l LocalCorefile, m []string) string {
			return fmt.Sprintf("%sready 127.0.0.1:%d", m[1], l.ReadyPort)
		}},
	{"prometheus :9153", regexp.MustCompile(`(?m)^(\s+)prometheus :9153$`),
		func(l LocalCorefile, m []string) string {
			return fmt.Sprintf("%sprometheus 127.0.0.1:%d", m[1], l.MetricsPort)
		}},
	{"the kubernetes block", regexp.MustCompile(`(?m)^(\s+)(kubernetes [^{\n]*\{)$`),
		func(l LocalCorefile, m []string) string {
			return fmt.Sprintf("%s%s\n%s    kubeconfig %s local", m[1], m[2], m[1], l.Kubeconfig)
		}},
	{"forward . /etc/resolv.conf", regexp.MustCompile(`(?m)^(\s+)forward \. /etc/resolv\.conf`),
		func(l LocalCorefile, m []string) string { return fmt.Sprintf("%sforward . %s", m[1], l.Upstream) }},
}

// RenderLocal rewrites a production Corefile (Corefile.example's shape) to run
// on loopback against a local or given cluster.
func RenderLocal(corefile string, l LocalCorefile) (string, error) {
	if l.Upstream == "" {
		l.Upstream = "/etc/resolv.conf"
	}
	if len(l.Bind) == 0 {
		l.Bind = []string{"127.0.0.1"}
	}
	for _, rw := range corefileRewrites {
		if !rw.pattern.MatchString(corefile) {
			return "", fmt.Errorf("corefile: expected %s (pattern %s)", rw.what, rw.pattern)
		}
		corefile = rw.pattern.ReplaceAllStringFunc(corefile, func(s string) string {
			return rw.replace(l, rw.pattern.FindStringSubmatch(s))
		})
	}
	return strings.TrimSpace(corefile) + "\n", nil
}

// StockCorefile is kubeadm's default Corefile (v1.37), on the loopback ports
// p, with kubeconfig instead of in-cluster config and upstream instead of
// /etc/resolv.conf. extra adds plugin lines; plugin.cfg, not their place
// here, decides where they run.
func StockCorefile(p Ports, kubeconfig, upstream, extra string) string {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    errors
    health 127.0.0.1:%d {
       lameduck 1s
    }
    ready 127.0.0.1:%d
    %s
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       kubeconfig %s local
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus 127.0.0.1:%d
    forward . %s {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`, p.DNS, p.Health, p.Ready, extra, kubeconfig, p.Metrics, upstream)
}

// Example is Corefile.example as the repository holds it.
func Example() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(root, "Corefile.example"))
	return string(data), err
}

// LocalRenderer renders text (Corefile.example's shape, see RenderLocal)
// for RunCoreDNS's ports, with kubeconfig and upstream.
func LocalRenderer(text, kubeconfig, upstream string) func(Ports) (string, error) {
	return func(p Ports) (string, error) { return RenderLocal(text, p.Local(kubeconfig, upstream)) }
}
