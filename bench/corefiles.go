package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/warpdns/warpdns/test/cluster"
)

// corefiles renders the Corefiles the bench runs, for given ports.
type corefiles struct {
	kubeconfig string
	stub       string // forward's target
	example    string // Corefile.example as read from the repository
}

func loadCorefiles(kubeconfig, stub string) (*corefiles, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return nil, err
	}
	example, err := os.ReadFile(filepath.Join(root, "Corefile.example"))
	if err != nil {
		return nil, err
	}
	return &corefiles{kubeconfig: kubeconfig, stub: stub, example: string(example)}, nil
}

// stock is kubeadm's default Corefile (the one test/differential uses), on
// loopback ports with the local kubeconfig and the stub upstream.
func (c *corefiles) stock(p ports) (string, error) {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    errors
    health 127.0.0.1:%d {
       lameduck 1s
    }
    ready 127.0.0.1:%d
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
`, p.dns, p.health, p.ready, c.kubeconfig, p.metrics, c.stub), nil
}

// exampleLocal is Corefile.example as it is, made local (RenderLocal).
func (c *corefiles) exampleLocal(p ports) (string, error) {
	return c.render(c.example, p)
}

// ourPluginStanzas are the envalias and headlessonly lines (with their
// blocks) of Corefile.example.
var ourPluginStanzas = regexp.MustCompile(`(?m)^[ \t]*(envalias|headlessonly)\b[^{\n]*(\{[^}]*\})?[ \t]*\n`)

// exampleWithoutOurs is Corefile.example made local without envalias and
// headlessonly: the same server block, listeners and upstream plugins (acl,
// cache, ...), for upstream CoreDNS to run. Against it, the VPC path
// measures what our two plugins cost, and nothing else.
func (c *corefiles) exampleWithoutOurs(p ports) (string, error) {
	text, err := c.render(c.example, p)
	if err != nil {
		return "", err
	}
	found := map[string]bool{}
	for _, m := range ourPluginStanzas.FindAllStringSubmatch(text, -1) {
		found[m[1]] = true
	}
	if !found["envalias"] || !found["headlessonly"] {
		return "", fmt.Errorf("Corefile.example: expected an envalias and a headlessonly stanza to drop (pattern %s)", ourPluginStanzas)
	}
	return ourPluginStanzas.ReplaceAllString(text, ""), nil
}

// noCacheLines is the cache block of Corefile.example that keeps the
// cluster zone out of the cache.
var noCacheLines = regexp.MustCompile(`(?m)^(\s+)cache 30 \{\n\s+disable success cluster\.local\n\s+disable denial cluster\.local\n\s+\}$`)

// exampleCached is Corefile.example with the cluster zone cached too
// (`cache 30` without its disable lines): what propagation costs when
// someone turns the cache on for it.
func (c *corefiles) exampleCached(p ports) (string, error) {
	if !noCacheLines.MatchString(c.example) {
		return "", fmt.Errorf("Corefile.example: no `cache 30 { disable success cluster.local; disable denial cluster.local }` block to drop (pattern %s)", noCacheLines)
	}
	return c.render(noCacheLines.ReplaceAllString(c.example, "${1}cache 30"), p)
}

func (c *corefiles) render(text string, p ports) (string, error) {
	return cluster.RenderLocal(text, cluster.LocalCorefile{
		InClusterPort: p.dns, VPCPort: p.vpc, HealthPort: p.health, ReadyPort: p.ready, MetricsPort: p.metrics,
		Kubeconfig: c.kubeconfig, Upstream: c.stub,
	})
}

// whoami is the ceiling: upstream's whoami plugin answers without looking
// anything up.
func (c *corefiles) whoami(p ports) (string, error) {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    ready 127.0.0.1:%d
    whoami
}
`, p.dns, p.ready), nil
}
