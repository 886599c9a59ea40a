package headlessonly

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/kubernetes"

	"k8s.io/apimachinery/pkg/util/validation"
)

const pluginName = "headlessonly"

func init() { plugin.Register(pluginName, setup) }

func setup(c *caddy.Controller) error {
	h, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}

	// The kubernetes plugin is set up after us (plugin.cfg order), so look it up once every
	// plugin of the block exists.
	c.OnStartup(func() error {
		k, err := kubernetesPlugin(dnsserver.GetConfig(c).Handler("kubernetes"))
		if err != nil {
			return plugin.Error(pluginName, err)
		}
		h.k = k
		return nil
	})

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		h.Next = next
		return h
	})
	return nil
}

// kubernetesPlugin returns the block's kubernetes plugin, whose cache we read.
func kubernetesPlugin(m plugin.Handler) (*kubernetes.Kubernetes, error) {
	if m == nil {
		return nil, errors.New("the kubernetes plugin is not loaded in this server block; headlessonly reads its cache")
	}
	k, ok := m.(*kubernetes.Kubernetes)
	if !ok {
		return nil, errors.New("the handler named kubernetes is not the kubernetes plugin")
	}
	return k, nil
}

func parse(c *caddy.Controller) (*Headlessonly, error) {
	h := &Headlessonly{}

	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++

		// ".:53 .:5353" names the root zone twice; Matches picks the longest zone, so order is free.
		h.Zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
		slices.Sort(h.Zones)
		h.Zones = slices.Compact(h.Zones)
		for c.NextBlock() {
			switch c.Val() {
			case "namespaces":
				args := c.RemainingArgs()
				if len(args) == 0 {
					return nil, c.ArgErr()
				}
				if h.namespaces == nil {
					h.namespaces = make(map[string]struct{})
				}
				for _, ns := range args {
					// A name Kubernetes would refuse (uppercase, dots) could never match.
					if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
						return nil, c.Errf("invalid namespace %q: %s", ns, strings.Join(errs, "; "))
					}
					h.namespaces[ns] = struct{}{}
				}

			case "fallback":
				args := c.RemainingArgs()
				if len(args) != 1 || args[0] != "clusterip" {
					return nil, c.Errf("fallback takes exactly one argument, \"clusterip\", got %q", strings.Join(args, " "))
				}
				h.fallback = true

			case "ports":
				args := c.RemainingArgs()
				if len(args) == 0 {
					return nil, c.ArgErr()
				}
				for _, a := range args {
					p, err := strconv.ParseUint(a, 10, 16)
					if err != nil || p == 0 {
						return nil, c.Errf("invalid port %q: want a number from 1 to 65535", a)
					}
					h.ports = append(h.ports, uint16(p))
				}

			case "clients":
				args := c.RemainingArgs()
				if len(args) == 0 {
					return nil, c.ArgErr()
				}
				for _, a := range args {
					n, err := parsePrefix(a)
					if err != nil {
						return nil, c.Errf("invalid client network %q: want a CIDR such as 10.0.0.0/8 or an address", a)
					}
					h.clients = append(h.clients, n)
				}

			default:
				return nil, c.Errf("unknown option %q", c.Val())
			}
		}
	}
	return h, nil
}

// parsePrefix parses a CIDR, or a single address as its own network. Client addresses are
// compared unmapped and without zone, so networks are written the same way.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		if p.Addr().Is4In6() {
			return p, errors.New("IPv4-mapped network")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("address with zone")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
