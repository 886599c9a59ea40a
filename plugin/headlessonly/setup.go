package headlessonly

import (
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
)

const pluginName = "headlessonly"

func init() { plugin.Register(pluginName, setup) }

func setup(c *caddy.Controller) error {
	h, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		h.Next = next
		return h
	})
	return nil
}

// parse is a placeholder until the plugin's own issue lands: it accepts the
// directive and ignores its arguments.
func parse(c *caddy.Controller) (*handler, error) {
	for c.Next() {
		for c.NextBlock() {
		}
	}
	return &handler{}, nil
}
