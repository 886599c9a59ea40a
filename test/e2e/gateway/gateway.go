// Package gateway models Cloudflare Gateway's policy evaluation for the
// tests: which DNS answer and which connection a user gets, given the
// account's DNS, resolver and network policies, ours from the Terraform
// module manifests/cloudflare/modules/environment (evaluated by
// test/e2e/tf, not copied) and the organisation's from data. The e2e's
// gateway stand-in is generated from the same policies.
//
// Vendor behaviour modelled (Order of enforcement,
// https://developers.cloudflare.com/cloudflare-one/traffic-policies/order-of-enforcement/,
// cloudflare-docs partials/cloudflare-one/gateway/order-of-enforcement.mdx
// at 0320fc5):
//   - a DNS query meets "DNS policies with selectors evaluated before
//     resolution" (dns.fqdn and identity are), then "Resolver policies";
//     a connection meets network policies;
//   - within each kind, "Gateway evaluates policies in ascending order
//     beginning with the lowest value" and "Once traffic matches an Allow
//     or Block policy, evaluation stops" (first match);
//   - no matching resolver policy: Gateway's default resolver (1.1.1.1,
//     Resolver policies page); no matching network policy: the connection
//     goes ahead;
//   - "You can set a policy's precedence to any value that is not already
//     in use": two policies with one precedence are an error;
//   - a disabled policy does nothing (the provider's enabled defaults to
//     false: provider v5.22.0 zero_trust_gateway_policy/schema.go).
package gateway

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/warpdns/warpdns/test/e2e/tf"
)

// Filters, as the provider spells a policy's kind.
const (
	DNSFilter      = "dns"
	NetworkFilter  = "l4"
	ResolverFilter = "dns_resolver"
)

// Policy is one Gateway policy.
type Policy struct {
	Name       string
	Filter     string
	Action     string // allow, block, resolve
	Precedence int64
	Traffic    Expr // nil: any traffic
	Identity   Expr // nil: anyone
	// Resolvers are a resolver policy's rule_settings.dns_resolvers.
	Resolvers []Resolver
	// BlockPage is rule_settings.block_page_enabled of a DNS block.
	BlockPage bool
}

// String names the policy and its precedence, for reports; "no policy" for nil.
func (p *Policy) String() string {
	if p == nil {
		return "no policy"
	}
	return fmt.Sprintf("%q (%d)", p.Name, p.Precedence)
}

// Resolver is one entry of a resolver policy's dns_resolvers.
type Resolver struct {
	Addr   netip.AddrPort
	VNetID string
}

// Identity is what Gateway knows of the user behind a device.
type Identity struct {
	Email  string
	Groups []string
}

func (id Identity) fields() *Fields { return &Fields{Email: id.Email, Groups: id.Groups} }

// Matches says whether an identity expression matches the user (nil
// matches anyone).
func (id Identity) Matches(e Expr) (bool, error) { return Match(e, id.fields()) }

// Gateway is an account's policies in the order Gateway applies them.
type Gateway struct {
	policies []Policy
}

// New orders the policies by precedence, refusing a precedence used twice.
func New(policies ...[]Policy) (*Gateway, error) {
	g := &Gateway{policies: slices.Concat(policies...)}
	slices.SortStableFunc(g.policies, func(a, b Policy) int { return int(a.Precedence - b.Precedence) })
	for i := 1; i < len(g.policies); i++ {
		if a, b := g.policies[i-1], g.policies[i]; a.Precedence == b.Precedence {
			return nil, fmt.Errorf("precedence %d is used by %q and %q (Gateway takes a precedence not already in use)", a.Precedence, a.Name, b.Name)
		}
	}
	return g, nil
}

// Policies lists the policies of one filter in precedence order.
func (g *Gateway) Policies(filter string) []Policy {
	var out []Policy
	for _, p := range g.policies {
		if p.Filter == filter {
			out = append(out, p)
		}
	}
	return out
}

// Applies says whether p's traffic and identity conditions both match.
func (p *Policy) Applies(f *Fields) (bool, error) {
	if ok, err := Match(p.Traffic, f); err != nil || !ok {
		return false, err
	}
	return Match(p.Identity, f)
}

// first is the first policy of filter (in precedence order) that applies
// and whose action is one of actions; nil when none does.
func (g *Gateway) first(filter string, f *Fields, actions ...string) (*Policy, error) {
	for _, p := range g.Policies(filter) {
		ok, err := p.Applies(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		if ok && slices.Contains(actions, p.Action) {
			return &p, nil
		}
		if ok {
			return nil, fmt.Errorf("%s: action %q not modelled", p.Name, p.Action)
		}
	}
	return nil, nil
}

// DNSDecision is what Gateway does with a query.
type DNSDecision struct {
	Blocked  *Policy // the DNS block policy that answered; nil: not blocked
	Resolver *Policy // the resolver policy that routes it; nil: Gateway's default resolver
}

// DNS decides a query for fqdn (without the trailing dot) by user id.
func (g *Gateway) DNS(id Identity, fqdn string) (DNSDecision, error) {
	f := id.fields()
	f.FQDN = strings.ToLower(strings.TrimSuffix(fqdn, "."))
	var d DNSDecision
	p, err := g.first(DNSFilter, f, "allow", "block")
	if err != nil || p != nil && p.Action == "block" {
		d.Blocked = p
		return d, err
	}
	d.Resolver, err = g.first(ResolverFilter, f, "resolve")
	return d, err
}

// Connect decides a connection by user id to dst through virtual network
// vnet: allowed, and the network policy that decided (nil: none matched,
// allowed).
func (g *Gateway) Connect(id Identity, vnet string, dst netip.Addr) (bool, *Policy, error) {
	f := id.fields()
	f.DstIP, f.VNetID = dst, vnet
	p, err := g.first(NetworkFilter, f, "allow", "block")
	return err == nil && (p == nil || p.Action == "allow"), p, err
}

// FromModule reads every cloudflare_zero_trust_gateway_policy instance of
// a module evaluated for some inputs; disabled ones are left out.
func FromModule(m *tf.Module, v *tf.Values) ([]Policy, error) {
	var out []Policy
	for _, addr := range m.Resources("cloudflare_zero_trust_gateway_policy") {
		instances, err := v.Instances(addr)
		if err != nil {
			return nil, err
		}
		for _, inst := range instances {
			attrs := map[string]cty.Value{}
			for _, name := range []string{"name", "filters", "action", "precedence", "traffic", "identity", "enabled", "rule_settings"} {
				if attrs[name], err = inst.Attr(name); err != nil {
					return nil, fmt.Errorf("%s.%s: %w", addr, name, err)
				}
			}
			if attrs["enabled"].IsNull() || attrs["enabled"].False() {
				continue
			}
			p, err := policy(attrs)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", addr, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// FromData reads policies given as data, shaped as the environment
// module's org_gateway_policies input.
func FromData(list cty.Value) ([]Policy, error) {
	var out []Policy
	for _, v := range list.AsValueSlice() {
		attrs := v.AsValueMap()
		p, err := policy(attrs)
		if err != nil {
			return nil, fmt.Errorf("%#v: %w", v, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func policy(attrs map[string]cty.Value) (Policy, error) {
	var p Policy
	str := func(name string) string {
		if v := attrs[name]; v != cty.NilVal && !v.IsNull() && v.IsKnown() {
			return v.AsString()
		}
		return ""
	}
	for name, v := range attrs {
		if name != "rule_settings" && !v.IsWhollyKnown() {
			return p, fmt.Errorf("%s is unknown for these inputs", name)
		}
	}
	p.Name, p.Action = str("name"), str("action")
	var filters []string
	if f := attrs["filters"]; f != cty.NilVal && !f.IsNull() {
		for _, v := range f.AsValueSlice() {
			filters = append(filters, v.AsString())
		}
	}
	if len(filters) != 1 {
		return p, fmt.Errorf("filters %v: the provider takes exactly one", filters)
	}
	p.Filter = filters[0]
	if v := attrs["precedence"]; v.IsNull() {
		return p, errors.New("no precedence: Gateway would put it last, after the organisation's")
	} else if err := gocty.FromCtyValue(v, &p.Precedence); err != nil {
		return p, err
	}
	var err error
	if p.Traffic, err = Parse(str("traffic")); err != nil {
		return p, err
	}
	if p.Identity, err = Parse(str("identity")); err != nil {
		return p, err
	}
	if rs := attrs["rule_settings"]; rs != cty.NilVal && !rs.IsNull() && rs.IsKnown() {
		if rs.Type().HasAttribute("block_page_enabled") {
			bp := rs.GetAttr("block_page_enabled")
			p.BlockPage = !bp.IsNull() && bp.True()
		}
		if rs.Type().HasAttribute("dns_resolvers") {
			if p.Resolvers, err = resolvers(rs.GetAttr("dns_resolvers")); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

func resolvers(v cty.Value) ([]Resolver, error) {
	var out []Resolver
	for _, family := range []string{"ipv4", "ipv6"} {
		if v.IsNull() || !v.Type().HasAttribute(family) || v.GetAttr(family).IsNull() {
			continue
		}
		for _, r := range v.GetAttr(family).AsValueSlice() {
			if !r.IsWhollyKnown() {
				return nil, fmt.Errorf("dns_resolvers.%s: unknown for these inputs (give virtual_network_id)", family)
			}
			ip, err := netip.ParseAddr(r.GetAttr("ip").AsString())
			if err != nil {
				return nil, err
			}
			var port uint16
			if err := gocty.FromCtyValue(r.GetAttr("port"), &port); err != nil {
				return nil, err
			}
			out = append(out, Resolver{Addr: netip.AddrPortFrom(ip, port), VNetID: r.GetAttr("vnet_id").AsString()})
		}
	}
	return out, nil
}
