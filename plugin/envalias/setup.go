package envalias

import (
	"fmt"
	"slices"
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/kubernetes"
	"github.com/warpdns/warpdns/internal/kubedns"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/util/validation"
)

const pluginName = "envalias"

func init() { plugin.Register(pluginName, setup) }

func setup(c *caddy.Controller) error {
	e, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}

	// Do this in OnStartup, so all plugins have been initialized.
	c.OnStartup(func() error {
		if err := e.onStartup(dnsserver.GetConfig(c).Handler("kubernetes")); err != nil {
			return plugin.Error(pluginName, err)
		}
		return nil
	})

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		e.Next = next
		return e
	})
	return nil
}

// onStartup connects e to the kubernetes plugin of its server block, h.
func (e *Envalias) onStartup(h plugin.Handler) error {
	k, err := kubedns.Plugin(h)
	if err != nil {
		return err
	}

	// Select the kubernetes plugin's zones that lie within e.Zones: only
	// there is a name SVC.NS.svc.ZONE, and a server block for "." still
	// aliases cluster.local. Reverse zones hold no Service names.
	e.zones = nil
	for _, kz := range k.Zones {
		if reverseZones.Contains(kz) || !plugin.Zones(e.Zones).Contains(kz) {
			continue
		}
		e.zones = append(e.zones, strings.ToLower(kz))
	}
	if len(e.zones) == 0 {
		return fmt.Errorf("no zone of the kubernetes plugin (%s) is within the zones of envalias (%s)",
			strings.Join(k.Zones, " "), strings.Join(e.Zones, " "))
	}
	e.services = kubeServices{k}
	return nil
}

var reverseZones = plugin.Zones{"in-addr.arpa.", "ip6.arpa."}

// kubeServices looks Services up in the kubernetes plugin's informer cache.
type kubeServices struct{ k *kubernetes.Kubernetes }

func (s kubeServices) serviceExists(key string) bool {
	return s.k.APIConn != nil && len(s.k.APIConn.SvcIndex(key)) > 0
}

func parse(c *caddy.Controller) (*Envalias, error) {
	e := &Envalias{aliaser: aliaser{sep: "-"}}

	seen := map[string]bool{}
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++

		args := c.RemainingArgs()
		if len(args) == 0 {
			return nil, c.Err("at least one ENV is required")
		}
		for _, arg := range args {
			env := strings.ToLower(arg) // names compare without regard to case
			if len(validation.IsDNS1123Label(env)) > 0 {
				return nil, c.Errf("ENV %q is not a valid DNS label", arg)
			}
			if slices.Contains(e.envs, env) {
				return nil, c.Errf("ENV %q is given more than once", env)
			}
			e.envs = append(e.envs, env)
		}
		e.Zones = plugin.OriginsFromArgsOrServerBlock(nil, c.ServerBlockKeys)

		for c.NextBlock() {
			if seen[c.Val()] {
				return nil, c.Errf("%s is given more than once", c.Val())
			}
			seen[c.Val()] = true
			switch c.Val() {
			case "separator":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return nil, c.ArgErr()
				}
				sep := strings.ToLower(args[0])
				if sep == "" {
					return nil, c.Err("separator must not be empty")
				}
				if strings.ContainsFunc(sep, func(r rune) bool { return r > 0x7f || !isSepChar(byte(r)) }) {
					return nil, c.Errf("separator %q may only contain letters, digits, %q and %q", sep, "-", "_")
				}
				e.sep = sep
			case "zones":
				zones, err := names(c)
				if err != nil {
					return nil, err
				}
				e.Zones = zones
			case "domain":
				domains, err := names(c)
				if err != nil {
					return nil, err
				}
				if slices.Contains(domains, ".") {
					return nil, c.Err("domain must not be the root zone")
				}
				e.domains = domains
			default:
				return nil, c.Errf("unknown option %q", c.Val())
			}
		}
	}

	// Longest first: with "stg" and "stg-eu", stg-eu-api is api in stg-eu.
	slices.SortStableFunc(e.envs, func(a, b string) int { return len(b) - len(a) })
	return e, nil
}

// names reads the rest of the line as fully qualified, lower case domain names.
func names(c *caddy.Controller) ([]string, error) {
	args := c.RemainingArgs()
	if len(args) == 0 {
		return nil, c.ArgErr()
	}
	for i, a := range args {
		if _, ok := dns.IsDomainName(a); !ok || strings.ContainsAny(a, `\:/`) {
			return nil, c.Errf("%q is not a domain name", a)
		}
		args[i] = strings.ToLower(dns.Fqdn(a))
	}
	return args, nil
}

func isSepChar(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_'
}
