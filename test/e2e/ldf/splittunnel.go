package ldf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/zclconf/go-cty/cty"
	"go4.org/netipx"

	"github.com/warpdns/warpdns/test/e2e/tf"
)

// Vendor behaviour modelled (Cloudflare, "Split Tunnels",
// https://developers.cloudflare.com/cloudflare-one/team-and-resources/devices/warp/configure-warp/route-traffic/split-tunnels/):
// in Exclude mode "All traffic will be sent to Cloudflare Gateway except for
// the IPs and domains you specify"; in Include mode "Only traffic destined
// to the IPs or domains you specify will be sent to Cloudflare Gateway. All
// other traffic will bypass Gateway". A profile has one of the two lists:
// the provider refuses both (listvalidator.ConflictsWith, provider v5.22.0
// internal/services/zero_trust_device_custom_profile/schema.go). Domain
// entries add the addresses a name resolves to as it is resolved (same
// page, Domain-based Split Tunnels); the model keeps them as names and
// decides by address only.

// Split Tunnels modes, as the module's split_tunnel_mode spells them.
const (
	Exclude = "exclude"
	Include = "include"
)

// Route is one Split Tunnel entry: an address range or a domain.
type Route struct {
	Prefix      netip.Prefix // invalid for a domain entry
	Host        string
	Description string
}

// SplitTunnel is what a profile's Split Tunnels send through WARP.
type SplitTunnel struct {
	Mode   string // Exclude or Include
	Routes []Route
}

// listed is the set of addresses the routes name.
func (s *SplitTunnel) listed() *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, r := range s.Routes {
		if r.Prefix.IsValid() {
			b.AddPrefix(r.Prefix)
		}
	}
	set, _ := b.IPSet() // errors only for invalid prefixes, skipped above
	return set
}

// Through is the set of addresses the WARP client sends through the tunnel
// (to Gateway): all but the listed ones in Exclude mode, the listed ones in
// Include mode.
func (s *SplitTunnel) Through() *netipx.IPSet {
	if s.Mode == Include {
		return s.listed()
	}
	var b netipx.IPSetBuilder
	b.AddPrefix(netip.MustParsePrefix("0.0.0.0/0"))
	b.AddPrefix(netip.MustParsePrefix("::/0"))
	b.RemoveSet(s.listed())
	set, _ := b.IPSet()
	return set
}

// Hosts lists the domain entries.
func (s *SplitTunnel) Hosts() []string {
	var hosts []string
	for _, r := range s.Routes {
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	return hosts
}

// splitTunnel evaluates the profile's exclude and include lists; nil when
// they are unknown for these inputs.
func splitTunnel(profile tf.Instance) (*SplitTunnel, error) {
	var found []*SplitTunnel
	for _, mode := range []string{Exclude, Include} {
		v, err := profile.Attr(mode)
		if err != nil {
			return nil, err
		}
		if !v.IsWhollyKnown() {
			return nil, nil
		}
		if v.IsNull() {
			continue
		}
		s, err := NewSplitTunnel(mode, v)
		if err != nil {
			return nil, err
		}
		found = append(found, s)
	}
	switch len(found) {
	case 0:
		return nil, errors.New("neither exclude nor include set: the profile's Split Tunnels are whatever Cloudflare gives a new profile")
	case 1:
		return found[0], nil
	}
	return nil, errors.New("both exclude and include set: the provider refuses that (ConflictsWith)")
}

// NewSplitTunnel reads a list of Split Tunnel entries ({address, host,
// description} objects, as the provider takes them) for mode.
func NewSplitTunnel(mode string, entries cty.Value) (*SplitTunnel, error) {
	s := &SplitTunnel{Mode: mode}
	attr := func(e cty.Value, name string) string {
		if !e.Type().HasAttribute(name) || e.GetAttr(name).IsNull() {
			return ""
		}
		return e.GetAttr(name).AsString()
	}
	for _, e := range entries.AsValueSlice() {
		r := Route{Host: attr(e, "host"), Description: attr(e, "description")}
		if a := attr(e, "address"); a != "" {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("%s entry: %w", mode, err)
			}
			r.Prefix = p
		}
		if r.Prefix.IsValid() == (r.Host != "") {
			return nil, fmt.Errorf("%s entry %#v: one of address and host, as the provider requires", mode, e)
		}
		s.Routes = append(s.Routes, r)
	}
	return s, nil
}
