package bench

import (
	"fmt"
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
	example, err := cluster.Example()
	if err != nil {
		return nil, err
	}
	return &corefiles{kubeconfig: kubeconfig, stub: stub, example: example}, nil
}

// stock is kubeadm's default Corefile (cluster.StockCorefile).
func (c *corefiles) stock(p cluster.Ports) (string, error) {
	return cluster.StockCorefile(p, c.kubeconfig, c.stub, ""), nil
}

// exampleLocal is Corefile.example as it is, made local (RenderLocal).
func (c *corefiles) exampleLocal(p cluster.Ports) (string, error) {
	return c.render(c.example, p)
}

// ourPluginStanzas are the envalias and headlessonly lines (with their
// blocks) of Corefile.example.
var ourPluginStanzas = regexp.MustCompile(`(?m)^[ \t]*(envalias|headlessonly)\b[^{\n]*(\{[^}]*\})?[ \t]*\n`)

// exampleWithoutOurs is Corefile.example made local without envalias and
// headlessonly: the same server block, listeners and upstream plugins (acl,
// cache, ...), for upstream CoreDNS to run. Against it, the VPC path
// measures what our two plugins cost, and nothing else.
func (c *corefiles) exampleWithoutOurs(p cluster.Ports) (string, error) {
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
func (c *corefiles) exampleCached(p cluster.Ports) (string, error) {
	if !noCacheLines.MatchString(c.example) {
		return "", fmt.Errorf("Corefile.example: no `cache 30 { disable success cluster.local; disable denial cluster.local }` block to drop (pattern %s)", noCacheLines)
	}
	return c.render(noCacheLines.ReplaceAllString(c.example, "${1}cache 30"), p)
}

func (c *corefiles) render(text string, p cluster.Ports) (string, error) {
	return cluster.RenderLocal(text, p.Local(c.kubeconfig, c.stub))
}

// whoami is the ceiling: upstream's whoami plugin answers without looking
// anything up.
func (c *corefiles) whoami(p cluster.Ports) (string, error) {
	return fmt.Sprintf(".:%d {\n    bind 127.0.0.1\n    ready 127.0.0.1:%d\n    whoami\n}\n", p.DNS, p.Ready), nil
}

// The plain server blocks of the saturated comparisons: nothing in the query
// path but the plugins compared. `ready` is no handler (it only serves
// HTTP), so it costs a query nothing; it tells when the cache has synced.

// plainOurs is `cluster.local:PORT { envalias stg; headlessonly; kubernetes cluster.local }`.
func (c *corefiles) plainOurs(p cluster.Ports) (string, error) {
	return fmt.Sprintf(`cluster.local:%d {
    bind 127.0.0.1
    ready 127.0.0.1:%d
    envalias stg
    headlessonly
    kubernetes cluster.local {
        kubeconfig %s local
    }
}
`, p.DNS, p.Ready, c.kubeconfig), nil
}

// plainUpstream is `cluster.local:PORT { kubernetes cluster.local }`.
func (c *corefiles) plainUpstream(p cluster.Ports) (string, error) {
	return fmt.Sprintf(`cluster.local:%d {
    bind 127.0.0.1
    ready 127.0.0.1:%d
    kubernetes cluster.local {
        kubeconfig %s local
    }
}
`, p.DNS, p.Ready, c.kubeconfig), nil
}

// k8sGateway is the peer's plain block: `svc.cluster.local { k8s_gateway
// svc.cluster.local { resources Service } }`, as its README configures it
// (`kubeconfig KUBECONFIG [CONTEXT]` is its option for a cluster it does not
// run in).
func (c *corefiles) k8sGateway(p cluster.Ports) (string, error) {
	return fmt.Sprintf(`svc.cluster.local:%d {
    bind 127.0.0.1
    ready 127.0.0.1:%d
    k8s_gateway svc.cluster.local {
        resources Service
        kubeconfig %s local
    }
}
`, p.DNS, p.Ready, c.kubeconfig), nil
}
