package gateway

import (
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/warpdns/warpdns/test/cluster"
	"github.com/warpdns/warpdns/test/e2e/tf"
)

// env is one environment's inputs to modules/environment, as
// examples/stg-prd passes them: stg for the developers group, prd for
// on-call.
type env struct {
	name, vnet, vpc, lb, pod string
	resolverPrecedence       int
	groups                   []string
	precedence               int
}

var (
	stg = env{"stg", "vnet-stg", "10.0.0.0/16", "10.0.12.53", "10.0.3.7", 1000, []string{"developers"}, 10000}
	prd = env{"prd", "vnet-prd", "10.1.0.0/16", "10.1.12.53", "10.1.3.7", 1010, []string{"oncall"}, 10010}
)

// Users as the IdP knows them.
var (
	onCall     = Identity{Email: "oncall@example.com", Groups: []string{"engineering", "developers", "oncall"}}
	developer  = Identity{Email: "dev@example.com", Groups: []string{"engineering", "developers"}}
	contractor = Identity{Email: "contractor@example.com", Groups: []string{"contractors"}}
	users      = []Identity{onCall, developer, contractor}
)

func environmentModule(t *testing.T) *tf.Module {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	m, err := tf.Load(filepath.Join(root, "manifests", "cloudflare", "modules", "environment"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// organisation reads testdata/organisation.tfvars.
func organisation(t *testing.T) cty.Value {
	t.Helper()
	vars, err := tf.ReadVars(filepath.Join("testdata", "organisation.tfvars"))
	if err != nil {
		t.Fatal(err)
	}
	return vars["org_gateway_policies"]
}

// inputs are e's inputs with access (when withAccess) and org.
func (e env) inputs(withAccess bool, org cty.Value) map[string]cty.Value {
	vars := map[string]cty.Value{
		"account_id":                 cty.StringVal("0123456789abcdef0123456789abcdef"),
		"env":                        cty.StringVal(e.name),
		"lb_ips":                     cty.ListVal([]cty.Value{cty.StringVal(e.lb)}),
		"vpc_cidrs":                  cty.ListVal([]cty.Value{cty.StringVal(e.vpc)}),
		"virtual_network_id":         cty.StringVal(e.vnet),
		"resolver_policy_precedence": cty.NumberIntVal(int64(e.resolverPrecedence)),
		"org_gateway_policies":       org,
	}
	if withAccess {
		var groups []cty.Value
		for _, g := range e.groups {
			groups = append(groups, cty.StringVal(g))
		}
		vars["access"] = cty.ObjectVal(map[string]cty.Value{
			"groups": cty.ListVal(groups), "precedence": cty.NumberIntVal(int64(e.precedence)),
		})
	}
	return vars
}

// account evaluates the environment module for envs and puts their
// policies beside the organisation's. An input the module lacks is a
// failure; the module is then evaluated without it, to show what that
// costs.
func account(t *testing.T, withAccess bool, org cty.Value, envs ...env) *Gateway {
	t.Helper()
	m := environmentModule(t)
	all := [][]Policy{}
	if !org.IsNull() {
		p, err := FromData(org)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p)
	}
	for _, e := range envs {
		vars := e.inputs(withAccess, org)
		for _, name := range slices.Sorted(maps.Keys(vars)) {
			if !m.Declares(name) {
				t.Errorf("modules/environment has no input %s", name)
				delete(vars, name)
			}
		}
		values, err := m.Evaluate(vars)
		if err != nil {
			t.Fatal(err)
		}
		p, err := FromModule(m, values)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p)
	}
	g, err := New(all...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (e env) allows(id Identity) bool {
	return slices.ContainsFunc(id.Groups, func(g string) bool { return slices.Contains(e.groups, g) })
}

func name(e env) string { return e.name + "-api.platform.svc.cluster.local" }

// Who gets what: in access, an environment's names resolve through its
// resolver policy and its pods and resolver IP take connections; outside
// access, its names get Gateway's block answer and its ranges refuse
// connections; whatever the organisation's policies decide elsewhere
// stays as it was.
func TestAccess(t *testing.T) {
	g := account(t, true, organisation(t), stg, prd)
	for _, e := range []env{stg, prd} {
		// The documented pattern: the allow above the block.
		var allow, block *Policy
		for _, p := range g.Policies(NetworkFilter) {
			switch {
			case strings.HasPrefix(p.Name, e.name+":") && p.Action == "allow":
				allow = &p
			case strings.HasPrefix(p.Name, e.name+":") && p.Action == "block":
				block = &p
			}
		}
		if allow == nil || block == nil || allow.Precedence >= block.Precedence {
			t.Errorf("%s: network allow %+v must come before the block %+v", e.name, allow, block)
		}
		for _, id := range users {
			want := e.allows(id)
			for _, dst := range []string{e.pod, e.lb} {
				ok, by, err := g.Connect(id, e.vnet, netip.MustParseAddr(dst))
				if err != nil {
					t.Fatal(err)
				}
				if ok != want {
					t.Errorf("%s to %s %s: allowed %v (by %s), want %v", id.Email, e.name, dst, ok, by, want)
				} else if !want && (by == nil || !strings.HasPrefix(by.Name, e.name+":")) {
					t.Errorf("%s to %s %s: blocked by %s, want %s's own block", id.Email, e.name, dst, by, e.name)
				}
			}
			d, err := g.DNS(id, name(e))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case want && (d.Blocked != nil || d.Resolver == nil || !strings.HasPrefix(d.Resolver.Name, e.name+":")):
				t.Errorf("%s asks %s: %+v, want %s's resolver policy", id.Email, name(e), d, e.name)
			case !want && (d.Blocked == nil || d.Blocked.BlockPage):
				t.Errorf("%s asks %s: %+v, want blocked (block page off: A 0.0.0.0, AAAA ::)", id.Email, name(e), d)
			}
		}
	}
	// The organisation's decisions elsewhere are unchanged.
	for _, c := range []struct {
		id   Identity
		dst  string
		want bool
	}{
		{developer, "10.9.0.1", true},     // Engineering to the office network
		{contractor, "10.9.0.1", false},   // Nobody else to private ranges
		{onCall, "198.51.100.7", false},   // Block the partner range
		{contractor, "203.0.113.9", true}, // nothing matches
	} {
		if ok, by, _ := g.Connect(c.id, "", netip.MustParseAddr(c.dst)); ok != c.want {
			t.Errorf("%s to %s: allowed %v (by %s), want %v", c.id.Email, c.dst, ok, by, c.want)
		}
	}
	if d, _ := g.DNS(onCall, "www.malware.example"); d.Blocked == nil {
		t.Errorf("the organisation's malware block no longer applies: %+v", d)
	}
}

// Environments whose VPCs overlap, each in its virtual network: stg's allow
// must not open prd's same addresses.
func TestAccessOverlappingVPCs(t *testing.T) {
	p := prd
	p.vpc, p.lb, p.pod = stg.vpc, stg.lb, stg.pod
	g := account(t, true, cty.NullVal(cty.DynamicPseudoType), stg, p)
	for vnet, want := range map[string]bool{stg.vnet: true, p.vnet: false} {
		if ok, by, _ := g.Connect(developer, vnet, netip.MustParseAddr(stg.pod)); ok != want {
			t.Errorf("developer to %s in %s: allowed %v (by %s), want %v", stg.pod, vnet, ok, by, want)
		}
	}
}

// Without access (the default), nothing changes: everyone resolves and
// reaches both environments, and the module creates no access policy.
func TestAccessDefault(t *testing.T) {
	g := account(t, false, cty.NullVal(cty.DynamicPseudoType), stg, prd)
	if n := len(g.Policies(NetworkFilter)) + len(g.Policies(DNSFilter)); n != 0 {
		t.Errorf("%d access policies without access", n)
	}
	for _, e := range []env{stg, prd} {
		for _, id := range users {
			if ok, by, _ := g.Connect(id, e.vnet, netip.MustParseAddr(e.pod)); !ok {
				t.Errorf("%s to %s: blocked by %s", id.Email, e.name, by)
			}
			if d, _ := g.DNS(id, name(e)); d.Resolver == nil {
				t.Errorf("%s asks %s: %+v", id.Email, name(e), d)
			}
		}
	}
}

// A precedence the organisation already uses is refused at plan.
func TestAccessPrecedenceInUse(t *testing.T) {
	m := environmentModule(t)
	org := cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
		"name": cty.StringVal("taken"), "filters": cty.ListVal([]cty.Value{cty.StringVal("l4")}),
		"action": cty.StringVal("allow"), "precedence": cty.NumberIntVal(int64(stg.precedence + 1)),
	})})
	values, err := m.Evaluate(stg.inputs(true, org))
	if err != nil {
		t.Fatal(err)
	}
	instances, err := values.Instances("cloudflare_zero_trust_gateway_policy.access_allow")
	if err != nil || len(instances) != 1 {
		t.Fatalf("access_allow: %d instances (%v)", len(instances), err)
	}
	failed, err := instances[0].Preconditions()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint(stg.precedence + 1); len(failed) != 1 || !strings.Contains(failed[0], want) {
		t.Errorf("preconditions failed: %q, want one naming %s", failed, want)
	}
}
