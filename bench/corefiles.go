package bench

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/warpdns/warpdns/test/cluster"
)

// corefile writes a Corefile for the ports cluster.RunCoreDNS gives a coredns.
type corefile = func(cluster.Ports) (string, error)

// corefiles are the Corefiles the bench runs.
type corefiles struct {
	stock   corefile // kubeadm's default (cluster.StockCorefile)
	example corefile // Corefile.example as it is, made local (cluster.RenderLocal)
	// withoutOurs is Corefile.example made local without envalias and
	// headlessonly: the same server block, listeners and upstream plugins
	// (acl, cache, ...), for upstream CoreDNS to run. Against it, the VPC
	// path measures what our two plugins cost, and nothing else.
	withoutOurs corefile
	// exampleCached is Corefile.example with the cluster zone cached too
	// (`cache 30` without its disable lines): what propagation costs when
	// someone turns the cache on for it.
	exampleCached corefile
	whoami        corefile // the ceiling: upstream's whoami plugin answers without looking anything up
	// The plain server blocks of the saturated comparisons: nothing in the
	// query path but the plugins compared.
	plainOurs, plainUpstream, k8sGateway corefile
}

// ourPluginStanzas are the envalias and headlessonly lines (with their
// blocks) of Corefile.example.
var ourPluginStanzas = regexp.MustCompile(`(?m)^[ \t]*(envalias|headlessonly)\b[^{\n]*(\{[^}]*\})?[ \t]*\n`)

// noCacheLines is the cache block of Corefile.example that keeps the
// cluster zone out of the cache.
var noCacheLines = regexp.MustCompile(`(?m)^(\s+)cache 30 \{\n\s+disable success cluster\.local\n\s+disable denial cluster\.local\n\s+\}$`)

func loadCorefiles(kubeconfig, stub string) (*corefiles, error) {
	text, err := cluster.Example()
	if err != nil {
		return nil, err
	}
	if !noCacheLines.MatchString(text) {
		return nil, fmt.Errorf("Corefile.example: no `cache 30 { disable success cluster.local; disable denial cluster.local }` block to drop (pattern %s)", noCacheLines)
	}
	example := cluster.LocalRenderer(text, kubeconfig, stub)
	// ready is no handler (it only serves HTTP), so it costs a query
	// nothing; it tells when the cache has synced.
	block := func(zone, plugins string) corefile {
		return func(p cluster.Ports) (string, error) {
			return fmt.Sprintf("%s:%d {\n    bind 127.0.0.1\n    ready 127.0.0.1:%d\n%s}\n", zone, p.DNS, p.Ready,
				strings.ReplaceAll(plugins, "KUBECONFIG", kubeconfig)), nil
		}
	}
	return &corefiles{
		stock: func(p cluster.Ports) (string, error) {
			return cluster.StockCorefile(p, kubeconfig, stub, ""), nil
		},
		example: example,
		withoutOurs: func(p cluster.Ports) (string, error) {
			text, err := example(p)
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
		},
		exampleCached: cluster.LocalRenderer(noCacheLines.ReplaceAllString(text, "${1}cache 30"), kubeconfig, stub),
		whoami:        block(".", "    whoami\n"),
		// cluster.local:PORT { envalias stg; headlessonly; kubernetes cluster.local }
		plainOurs: block("cluster.local", `    envalias stg
    headlessonly
    kubernetes cluster.local {
        kubeconfig KUBECONFIG local
    }
`),
		// cluster.local:PORT { kubernetes cluster.local }
		plainUpstream: block("cluster.local", `    kubernetes cluster.local {
        kubeconfig KUBECONFIG local
    }
`),
		// The peer's plain block, svc.cluster.local { k8s_gateway
		// svc.cluster.local { resources Service } }, as its README
		// configures it (`kubeconfig KUBECONFIG [CONTEXT]` is its option for
		// a cluster it does not run in).
		k8sGateway: block("svc.cluster.local", `    k8s_gateway svc.cluster.local {
        resources Service
        kubeconfig KUBECONFIG local
    }
`),
	}, nil
}
