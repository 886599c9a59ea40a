// Package ldf models the WARP client's Local Domain Fallback for the tests:
// which names the client keeps on the device (sending them to a fallback
// DNS server, or to the device's own resolver) instead of sending them to
// Gateway. The list comes from the Terraform module that writes it,
// manifests/cloudflare/modules/device-profile, evaluated here with HCL and
// go-cty's function library (no terraform binary, no copy of the list).
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
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
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
	// Domains is the list the device gets: the module's fallback resource,
	// or Default when the module creates none for these inputs.
	Domains []Domain
	// Managed says whether the module writes the list for these inputs.
	Managed bool
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

const fallbackResource = "cloudflare_zero_trust_device_custom_profile_local_domain_fallback"

// functions are the Terraform functions the module may use, from go-cty's
// standard library (Terraform's own functions are built on it).
var functions = map[string]function.Function{
	"concat":     stdlib.ConcatFunc,
	"coalesce":   stdlib.CoalesceFunc,
	"compact":    stdlib.CompactFunc,
	"distinct":   stdlib.DistinctFunc,
	"flatten":    stdlib.FlattenFunc,
	"length":     stdlib.LengthFunc,
	"lower":      stdlib.LowerFunc,
	"replace":    stdlib.ReplaceFunc,
	"trimprefix": stdlib.TrimPrefixFunc,
	"trimsuffix": stdlib.TrimSuffixFunc,
	"contains":   stdlib.ContainsFunc,
}

// Evaluate reads the device-profile module in dir and evaluates its fallback
// list for the variables given (others take their defaults; those without
// one are unknown).
func Evaluate(dir string, vars map[string]cty.Value) (*Profile, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("%s: no .tf files (%v)", dir, err)
	}
	parser := hclparse.NewParser()
	varVals := map[string]cty.Value{}
	locals := map[string]*hclsyntax.Attribute{}
	var fallback *hclsyntax.Block
	for _, f := range files {
		file, diags := parser.ParseHCLFile(f)
		if diags.HasErrors() {
			return nil, diags
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			switch {
			case b.Type == "variable":
				name := b.Labels[0]
				switch v, ok := vars[name]; {
				case ok:
					varVals[name] = v
				case b.Body.Attributes["default"] != nil:
					d, diags := b.Body.Attributes["default"].Expr.Value(nil)
					if diags.HasErrors() {
						return nil, diags
					}
					varVals[name] = d
				default:
					varVals[name] = cty.DynamicVal
				}
			case b.Type == "locals":
				for name, a := range b.Body.Attributes {
					locals[name] = a
				}
			case b.Type == "resource" && b.Labels[0] == fallbackResource:
				fallback = b
			}
		}
	}
	for name := range vars {
		if _, ok := varVals[name]; !ok {
			return nil, fmt.Errorf("%s declares no variable %q", dir, name)
		}
	}
	ctx, err := evalLocals(varVals, locals)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	p := &Profile{}
	def, ok := ctx.Variables["local"].AsValueMap()["cloudflare_default_fallback_domains"]
	if !ok {
		return nil, fmt.Errorf("%s: no local cloudflare_default_fallback_domains (Cloudflare's default list)", dir)
	}
	for _, v := range def.AsValueSlice() {
		p.Default = append(p.Default, v.AsString())
	}
	p.Managed = fallback != nil
	if fallback != nil && fallback.Body.Attributes["count"] != nil {
		n, diags := fallback.Body.Attributes["count"].Expr.Value(ctx)
		if diags.HasErrors() {
			return nil, diags
		}
		p.Managed = !n.Equals(cty.Zero).True()
	}
	if !p.Managed {
		return p.DefaultProfile(), nil
	}
	domains, diags := fallback.Body.Attributes["domains"].Expr.Value(ctx)
	if diags.HasErrors() {
		return nil, diags
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

// evalLocals evaluates the locals, each after the locals it refers to
// (Terraform allows any order in the file).
func evalLocals(vars map[string]cty.Value, locals map[string]*hclsyntax.Attribute) (*hcl.EvalContext, error) {
	done := map[string]cty.Value{}
	ctx := &hcl.EvalContext{Functions: functions, Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}}
	var eval func(name string, depth int) error
	eval = func(name string, depth int) error {
		if _, ok := done[name]; ok {
			return nil
		}
		a, ok := locals[name]
		if !ok || depth > len(locals) {
			return fmt.Errorf("local.%s: undefined, or the locals refer to each other in a cycle", name)
		}
		for _, tr := range a.Expr.Variables() {
			if tr.RootName() != "local" || len(tr) < 2 {
				continue
			}
			if ref, ok := tr[1].(hcl.TraverseAttr); ok {
				if err := eval(ref.Name, depth+1); err != nil {
					return err
				}
			}
		}
		ctx.Variables["local"] = cty.ObjectVal(done)
		v, diags := a.Expr.Value(ctx)
		if diags.HasErrors() {
			return fmt.Errorf("local.%s: %s", name, diags.Error())
		}
		done[name] = v
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(locals)) {
		if err := eval(name, 0); err != nil {
			return nil, err
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(done)
	return ctx, nil
}
