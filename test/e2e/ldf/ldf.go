// Package ldf models the WARP client's device profile for the tests: its
// Local Domain Fallback, which names the client keeps on the device (sending
// them to a fallback DNS server, or to the device's own resolver) instead of
// sending them to Gateway, and its Split Tunnels, which destinations the
// client sends through WARP (splittunnel.go). The lists come from the
// Terraform module that writes them,
// manifests/cloudflare/modules/device-profile, evaluated by test/e2e/tf
// (no terraform binary, no copy of the lists).
//
// Vendor behaviour modelled (Cloudflare, "Local Domain Fallback",
// https://developers.cloudflare.com/cloudflare-one/team-and-resources/devices/warp/configure-warp/route-traffic/local-domains/):
// an entry matches its domain and every name below it ("example.com is
// interpreted as *.example.com"); a matching query goes to the entry's DNS
// servers, or without any to the resolver the device used before WARP
// started; only the rest goes to Gateway, and this happens on the device
// before any resolver policy.
package ldf

import (
	"fmt"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/warpdns/warpdns/test/e2e/tf"
)

// Domain is one Local Domain Fallback entry.
type Domain struct {
	Suffix    string
	DNSServer []string // empty: the device's own resolver
}

// Profile is what one device profile's fallback list does.
type Profile struct {
	// Default is Cloudflare's default list (the module's local
	// cloudflare_default_fallback_domains).
	Default []string
	// DefaultExclude is Cloudflare's default Split Tunnel Exclude list (the
	// module's local cloudflare_default_exclude; empty in modules without
	// it).
	DefaultExclude []string
	// Domains is the list the device gets: the module's fallback resource,
	// or Default when the module creates none for these inputs.
	Domains []Domain
	// Managed says whether the module writes the list for these inputs.
	Managed bool
	// Split is the profile's Split Tunnels; nil when the inputs leave them
	// unknown (no include given).
	Split *SplitTunnel
}

// DefaultProfile is a profile that keeps Cloudflare's default list.
func (p *Profile) DefaultProfile() *Profile {
	d := &Profile{Default: p.Default}
	for _, s := range p.Default {
		d.Domains = append(d.Domains, Domain{Suffix: s})
	}
	return d
}

// Match returns the entry that keeps name on the device: the longest suffix
// that equals name or ends a label of it.
func (p *Profile) Match(name string) (Domain, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	var best Domain
	found := false
	for _, d := range p.Domains {
		s := strings.ToLower(strings.Trim(d.Suffix, "."))
		if (name == s || strings.HasSuffix(name, "."+s)) && (!found || len(s) > len(best.Suffix)) {
			best, found = Domain{Suffix: s, DNSServer: d.DNSServer}, true
		}
	}
	return best, found
}

// Suffixes lists the entries' domains.
func (p *Profile) Suffixes() []string {
	var out []string
	for _, d := range p.Domains {
		out = append(out, d.Suffix)
	}
	return out
}

const (
	profileResource  = "cloudflare_zero_trust_device_custom_profile.this"
	fallbackResource = "cloudflare_zero_trust_device_custom_profile_local_domain_fallback.this"
)

// Evaluate reads the device-profile module in dir and evaluates its lists
// for the variables given (others take their defaults; those without one
// are unknown).
func Evaluate(dir string, vars map[string]cty.Value) (*Profile, error) {
	m, err := tf.Load(dir)
	if err != nil {
		return nil, err
	}
	return EvaluateModule(m, vars)
}

// EvaluateModule evaluates the module's lists for the variables given.
func EvaluateModule(m *tf.Module, vars map[string]cty.Value) (*Profile, error) {
	dir := m.Dir
	values, err := m.Evaluate(vars)
	if err != nil {
		return nil, err
	}
	p := &Profile{}
	def, ok := values.Local("cloudflare_default_fallback_domains")
	if !ok {
		return nil, fmt.Errorf("%s: no local cloudflare_default_fallback_domains (Cloudflare's default list)", dir)
	}
	for _, v := range def.AsValueSlice() {
		p.Default = append(p.Default, v.AsString())
	}
	if def, ok := values.Local("cloudflare_default_exclude"); ok {
		for _, v := range def.AsValueSlice() {
			p.DefaultExclude = append(p.DefaultExclude, v.AsString())
		}
	}
	profiles, err := values.Instances(profileResource)
	if err != nil || len(profiles) != 1 {
		return nil, fmt.Errorf("%s: want one %s: %d (%v)", dir, profileResource, len(profiles), err)
	}
	if p.Split, err = splitTunnel(profiles[0]); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", dir, profileResource, err)
	}
	fallback, err := values.Instances(fallbackResource)
	if err != nil {
		return nil, err
	}
	if p.Managed = len(fallback) > 0; !p.Managed {
		p.Domains = p.DefaultProfile().Domains
		return p, nil
	}
	domains, err := fallback[0].Attr("domains")
	if err != nil {
		return nil, err
	}
	for _, d := range domains.AsValueSlice() {
		entry := Domain{Suffix: d.GetAttr("suffix").AsString()}
		if d.Type().HasAttribute("dns_server") {
			if s := d.GetAttr("dns_server"); !s.IsNull() {
				for _, ip := range s.AsValueSlice() {
					entry.DNSServer = append(entry.DNSServer, ip.AsString())
				}
			}
		}
		p.Domains = append(p.Domains, entry)
	}
	return p, nil
}
