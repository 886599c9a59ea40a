package headlessonly

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/kubernetes"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	coreparse "github.com/coredns/coredns/plugin/pkg/parse"
	"github.com/coredns/coredns/plugin/pkg/transport"
	"github.com/warpdns/warpdns/internal/kubedns"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/util/validation"
)

const pluginName = "headlessonly"

var log = clog.NewWithPlugin(pluginName)

func init() { plugin.Register(pluginName, setup) }

func setup(c *caddy.Controller) error {
	h, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}

	// The kubernetes plugin is set up after us (plugin.cfg order), so look it up once every
	// plugin of the block exists.
	stop := make(chan struct{})
	c.OnStartup(func() error {
		k, err := kubedns.Plugin(dnsserver.GetConfig(c).Handler("kubernetes"))
		if err == nil {
			err = h.onStartup(k)
		}
		if err != nil {
			return plugin.Error(pluginName, err)
		}
		go h.warnNamespacesOnceSynced(stop)
		return nil
	})
	c.OnShutdown(func() error {
		close(stop)
		return nil
	})

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		h.Next = next
		return h
	})
	return nil
}

// onStartup connects h to the kubernetes plugin of its server block.
func (h *HeadlessOnly) onStartup(k *kubernetes.Kubernetes) error {
	// Every zone must hold names the kubernetes plugin answers: at or below one of its zones (or
	// above one, as the root is above cluster.local).
	for _, z := range h.Zones {
		if !kubedns.InZones(k.Zones, z) && !slices.ContainsFunc(k.Zones, func(kz string) bool { return kubedns.InZones([]string{z}, kz) }) {
			return fmt.Errorf("%s - zone %s is not within the zones of the kubernetes plugin (%s)", h.where, z, strings.Join(k.Zones, " "))
		}
	}
	for ns, where := range h.namespaces {
		if len(k.Namespaces) > 0 {
			if _, ok := k.Namespaces[ns]; !ok {
				log.Warningf("%s - namespace %q is not one of the kubernetes plugin's namespaces: no Service of it is answered", where, ns)
			}
		}
	}
	h.k = k
	return nil
}

// warnNamespacesOnceSynced waits for the kubernetes plugin's cache, then warns of the configured
// namespaces that do not exist.
func (h *HeadlessOnly) warnNamespacesOnceSynced(stop <-chan struct{}) {
	if len(h.namespaces) == 0 || h.k.APIConn == nil {
		return
	}
	for !h.k.APIConn.HasSynced() {
		select {
		case <-stop:
			return
		case <-time.After(time.Second):
		}
	}
	h.warnNamespaces(h.k.APIConn)
}

func (h *HeadlessOnly) warnNamespaces(conn kubedns.Controller) {
	for ns, where := range h.namespaces {
		if _, err := conn.GetNamespaceByName(ns); err != nil {
			log.Warningf("%s - namespace %q does not exist", where, ns)
		}
	}
}

func parse(c *caddy.Controller) (*HeadlessOnly, error) {
	h := &HeadlessOnly{}

	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++
		h.where = fmt.Sprintf("%s:%d", c.File(), c.Line())

		args := c.RemainingArgs()
		for _, z := range args {
			if _, ok := dns.IsDomainName(z); !ok || strings.Contains(z, "..") || strings.ContainsAny(z, `\:/`) {
				return nil, c.Errf("invalid zone %q", z)
			}
		}
		// ".:53 .:5353" names the root zone twice; Matches picks the longest zone, so order is free.
		h.Zones = plugin.OriginsFromArgsOrServerBlock(args, c.ServerBlockKeys)
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
					h.namespaces = make(map[string]string)
				}
				for _, ns := range args {
					// A name Kubernetes would refuse (uppercase, dots) could never match.
					if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
						return nil, c.Errf("invalid namespace %q: %s", ns, strings.Join(errs, "; "))
					}
					h.namespaces[ns] = fmt.Sprintf("%s:%d", c.File(), c.Line())
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
				listeners := blockPorts(c.ServerBlockKeys)
				for _, a := range args {
					p, err := strconv.ParseUint(a, 10, 16)
					if err != nil || p == 0 {
						return nil, c.Errf("invalid port %q: want a number from 1 to 65535", a)
					}
					if !slices.Contains(listeners, uint16(p)) {
						return nil, c.Errf("port %d is not a port of this server block (%s)", p, portList(listeners))
					}
					h.ports = append(h.ports, uint16(p))
				}

			case "clients":
				args := c.RemainingArgs()
				if len(args) == 0 {
					return nil, c.ArgErr()
				}
				for _, a := range args {
					n, err := clientNetwork(a)
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

// blockPorts returns the ports the server block's keys listen on ("dns://.:53", "cluster.local",
// "tls://."), with each transport's default where a key has none.
func blockPorts(keys []string) []uint16 {
	var ports []uint16
	for _, key := range keys {
		trans, addr := coreparse.Transport(key)
		port := dnsserver.Port
		switch trans {
		case transport.TLS:
			port = transport.TLSPort
		case transport.QUIC:
			port = transport.QUICPort
		case transport.GRPC:
			port = transport.GRPCPort
		case transport.HTTPS, transport.HTTPS3:
			port = transport.HTTPSPort
		}
		if _, p, err := net.SplitHostPort(addr); err == nil {
			port = p
		}
		if p, err := strconv.ParseUint(port, 10, 16); err == nil && !slices.Contains(ports, uint16(p)) {
			ports = append(ports, uint16(p))
		}
	}
	return ports
}

func portList(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, " ")
}

// clientNetwork parses a CIDR, or a single address as its own network. Client addresses are
// compared unmapped and without zone, so networks are made the same: ::ffff:10.0.0.0/104 is
// 10.0.0.0/8.
func clientNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return p, errors.New("IPv4-mapped network wider than the mapped range")
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
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
