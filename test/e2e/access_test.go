package e2e

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"
	"go4.org/netipx"

	"github.com/warpdns/warpdns/test/e2e/gateway"
	"github.com/warpdns/warpdns/test/e2e/tf"
)

// The lab's Cloudflare account, as our Terraform makes it: the environment
// module evaluated for each lab cluster with the access settings of
// examples/stg-prd/terraform.tfvars.example (stg for the developers group,
// prd for on-call) and an organisation's own Gateway policies
// (test/e2e/gateway/testdata/organisation.tfvars). The gateway stand-in's
// DNS views and routing rules are generated from those policies by
// test/e2e/gateway, as Gateway applies them; nothing here says again who
// may reach what.

// labUsers are the users behind the laptops, as the IdP knows them; Gateway
// knows the user of a WARP device, the stand-in knows it by the laptop's
// address.
var labUsers = map[string]gateway.Identity{
	laptopIP:  {Email: "oncall@example.com", Groups: []string{"engineering", "developers", "oncall"}},
	laptop2IP: {Email: "dev@example.com", Groups: []string{"engineering", "developers"}},
}

// resolverPrecedence is each environment's resolver policy precedence, as
// examples/stg-prd gives it.
var resolverPrecedence = map[string]int64{"stg": 1000, "prd": 1010}

// account is the lab's account: each environment's evaluated module, the
// Gateway policies (ours and the organisation's), and the tunnel routes of
// each virtual network.
type account struct {
	envs   map[string]*tf.Values
	gw     *gateway.Gateway
	org    int
	vnets  map[string]*netipx.IPSet
	notes  []string
	access map[string]cty.Value
}

// vnetID is the lab's id of env's virtual network (given to the module as
// virtual_network_id, so that the policies name it).
func vnetID(env string) string { return env + "-vpc-lab-id" }

func labAccount(root string, tp *topology) (*account, error) {
	example, err := tf.ReadVars(filepath.Join(root, "manifests", "cloudflare", "examples", "stg-prd", "terraform.tfvars.example"))
	if err != nil {
		return nil, err
	}
	orgData, err := tf.ReadVars(filepath.Join(root, "test", "e2e", "gateway", "testdata", "organisation.tfvars"))
	if err != nil {
		return nil, err
	}
	org, err := gateway.FromData(orgData["org_gateway_policies"])
	if err != nil {
		return nil, err
	}
	m, err := tf.Load(environmentModule(root))
	if err != nil {
		return nil, err
	}
	a := &account{envs: map[string]*tf.Values{}, org: len(org), vnets: map[string]*netipx.IPSet{}, access: map[string]cty.Value{}}
	all := [][]gateway.Policy{org}
	for _, c := range tp.clusters() {
		a.access[c.env] = example[c.env+"_access"]
		vars := map[string]cty.Value{
			"account_id":                 cty.StringVal("0123456789abcdef0123456789abcdef"),
			"env":                        cty.StringVal(c.env),
			"lb_ips":                     cty.ListVal([]cty.Value{cty.StringVal(c.lb)}),
			"vpc_cidrs":                  cty.ListVal([]cty.Value{cty.StringVal(c.vpc)}),
			"virtual_network_id":         cty.StringVal(vnetID(c.env)),
			"resolver_policy_precedence": cty.NumberIntVal(resolverPrecedence[c.env]),
			"access":                     a.access[c.env],
			"org_gateway_policies":       orgData["org_gateway_policies"],
		}
		for _, name := range slices.Sorted(maps.Keys(vars)) {
			if !m.Declares(name) {
				a.notes = append(a.notes, fmt.Sprintf("%s: the environment module takes no input %s (left out)", c.env, name))
				delete(vars, name)
			}
		}
		values, err := m.Evaluate(vars)
		if err != nil {
			return nil, err
		}
		a.envs[c.env] = values
		policies, err := gateway.FromModule(m, values)
		if err != nil {
			return nil, err
		}
		all = append(all, policies)
		routes, err := values.Instances("cloudflare_zero_trust_tunnel_cloudflared_route.vpc")
		if err != nil {
			return nil, err
		}
		var b netipx.IPSetBuilder
		for _, r := range routes {
			network, err := r.Attr("network")
			if err != nil {
				return nil, err
			}
			b.AddPrefix(netip.MustParsePrefix(network.AsString()))
		}
		if a.vnets[vnetID(c.env)], err = b.IPSet(); err != nil {
			return nil, err
		}
	}
	if a.gw, err = gateway.New(all...); err != nil {
		return nil, err
	}
	return a, nil
}

// clients renders who a policy's identity condition matches, among the lab
// users, as CoreDNS' view expression ("" when it has none: anyone).
func clients(p gateway.Policy) (string, error) {
	if p.Identity == nil {
		return "", nil
	}
	var ips []string
	for _, ip := range slices.Sorted(maps.Keys(labUsers)) {
		ok, err := labUsers[ip].Matches(p.Identity)
		if err != nil {
			return "", err
		}
		if ok {
			ips = append(ips, "'"+ip+"'")
		}
	}
	if len(ips) == 0 {
		return "false", nil
	}
	return "client_ip() in [" + strings.Join(ips, ", ") + "]", nil
}

// match renders a DNS or resolver policy's conditions as a view
// expression.
func match(p gateway.Policy) (string, error) {
	traffic, err := gateway.CoreDNS(p.Traffic)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p.Name, err)
	}
	who, err := clients(p)
	if err != nil || who == "" {
		return traffic, err
	}
	return "(" + traffic + ") && " + who, nil
}

// gatewayCorefile is Gateway's DNS side for the lab's cluster.local names,
// one server block per outcome, tried top to bottom (view), generated from
// the account's policies in Gateway's order:
//  1. DNS policies, first match by precedence: a block answers as Gateway
//     documents for a block with the block page off (A 0.0.0.0, AAAA ::,
//     REFUSED for other types: DNS policy actions, Block,
//     https://developers.cloudflare.com/cloudflare-one/traffic-policies/policy-types/dns-policies/actions/#custom-block-page;
//     the answer's TTL is not documented: 60 here); an allow goes on;
//  2. resolver policies, first match by precedence: the query goes,
//     unchanged, to the policy's resolver IP through its virtual network
//     (here, a route), answers cached up to their TTL as Gateway caches
//     them;
//  3. no resolver policy: Gateway's default resolver, public DNS, where no
//     cluster.local name exists: NXDOMAIN.
//
// Names outside cluster.local would be resolved publicly too; nothing may
// leave these namespaces, so there is no block for them and they are
// REFUSED.
func (a *account) gatewayCorefile() (string, error) {
	bind := gatewayIP + " " + gateway2IP
	blocked := "false"
	dns := a.gw.Policies(gateway.DNSFilter)
	for i := len(dns) - 1; i >= 0; i-- {
		if dns[i].BlockPage {
			return "", fmt.Errorf("%s: a block page answer is not modelled", dns[i].Name)
		}
		m, err := match(dns[i])
		if err != nil {
			return "", err
		}
		blocked = fmt.Sprintf("(%s) ? %t : (%s)", m, dns[i].Action == "block", blocked)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `cluster.local:53 {
    bind %s
    view dns-policy-block {
        expr %s
    }
    errors
    template IN A {
        answer "{{ .Name }} 60 IN A 0.0.0.0"
    }
    template IN AAAA {
        answer "{{ .Name }} 60 IN AAAA ::"
    }
    template ANY ANY {
        rcode REFUSED
    }
}
`, bind, blocked)
	for i, p := range a.gw.Policies(gateway.ResolverFilter) {
		m, err := match(p)
		if err != nil {
			return "", err
		}
		var to []string
		for _, r := range p.Resolvers {
			to = append(to, r.Addr.String())
		}
		if len(to) == 0 {
			return "", fmt.Errorf("%s: no resolver", p.Name)
		}
		fmt.Fprintf(&b, `cluster.local:53 {
    bind %s
    view resolver-policy-%d {
        expr !(%s) && %s
    }
    errors
    cache 30
    forward . %s
}
`, bind, i, blocked, m, strings.Join(to, " "))
	}
	fmt.Fprintf(&b, `cluster.local:53 {
    bind %s
    errors
    template ANY ANY {
        rcode NXDOMAIN
        authority "cluster.local. 30 IN SOA gateway.invalid. hostmaster.gateway.invalid. 1 7200 1800 86400 30"
    }
}
`, bind)
	return b.String(), nil
}

// networkRules are Gateway's network policies as routing rules of the
// gateway's namespace, in precedence order (ip rule priorities, first match
// wins, as Gateway's first match): for each policy, each lab user its
// identity matches and each virtual network, the destinations its traffic
// expression matches within that network's routes; an allow looks up the
// routes (table main), a block refuses (prohibit: the sender gets ICMP
// administratively prohibited at once, where Gateway "will end the
// connection and will not send any data", Order of enforcement, Connection
// establishment). Traffic from no lab user and the gateway's own (its
// resolver queries) meets no rule.
func (a *account) networkRules(ns string) ([][]string, error) {
	var rules [][]string
	for i, p := range a.gw.Policies(gateway.NetworkFilter) {
		action := []string{"table", "main"}
		if p.Action == "block" {
			action = []string{"prohibit"}
		}
		for _, src := range slices.Sorted(maps.Keys(labUsers)) {
			if ok, err := labUsers[src].Matches(p.Identity); err != nil || !ok {
				if err != nil {
					return nil, fmt.Errorf("%s: %w", p.Name, err)
				}
				continue
			}
			for _, vnet := range slices.Sorted(maps.Keys(a.vnets)) {
				dst, err := gateway.Destinations(p.Traffic, vnet, a.vnets[vnet])
				if err != nil {
					return nil, fmt.Errorf("%s: %w", p.Name, err)
				}
				for _, prefix := range dst.Prefixes() {
					rules = append(rules, append([]string{"-n", ns, "rule", "add", "priority", fmt.Sprint(1000 + i),
						"from", src + "/32", "to", prefix.String()}, action...))
				}
			}
		}
	}
	return rules, nil
}

// accessCheck: what the user on laptop (ns, address src) gets from env c:
// in access (the inputs), the model and the real network must both let
// the names resolve to the pods and the pods and resolver IP take
// connections; outside, the names get Gateway's block answer and the
// connections are refused.
func (w *world) accessCheck(ns, src string, c *clusterEnv) (string, error) {
	id := labUsers[src]
	want := w.account.inAccess(c.env, src)
	d, err := w.account.gw.DNS(id, fqdn(c.env))
	if err != nil {
		return "", err
	}
	pod := c.ready[0]
	allowed, by, err := w.account.gw.Connect(id, vnetID(c.env), netip.MustParseAddr(pod))
	if err != nil {
		return "", err
	}
	if (d.Blocked == nil) != want || allowed != want {
		return "", fmt.Errorf("%s, in %s's access: %v, but its policies: names blocked by %s, connections allowed %v (by %s)",
			id.Email, c.env, want, d.Blocked, allowed, by)
	}
	var parts []string
	if d.Blocked == nil {
		rep, err := ask(ns, fqdn(c.env)+" A", "NOERROR", c.ready...)
		if err != nil {
			return "", fmt.Errorf("%s asks %s (resolver policy %s): %w", id.Email, fqdn(c.env), d.Resolver, err)
		}
		parts = append(parts, "A "+strings.Join(addrs(rep.Answer), " "))
	} else {
		for _, q := range []struct{ qtype, rcode, addr string }{{"A", "NOERROR", "0.0.0.0"}, {"AAAA", "NOERROR", "::"}, {"SRV", "REFUSED", ""}} {
			want := []string{}
			if q.addr != "" {
				want = append(want, q.addr)
			}
			if _, err := ask(ns, fqdn(c.env)+" "+q.qtype, q.rcode, want...); err != nil {
				return "", fmt.Errorf("%s asks %s %s (blocked by %s): %w", id.Email, fqdn(c.env), q.qtype, d.Blocked, err)
			}
		}
		parts = append(parts, fmt.Sprintf("blocked by %s: A 0.0.0.0, AAAA ::, SRV REFUSED", d.Blocked))
	}
	f, err := curl(ns, fmt.Sprintf("http://%s:%d/", pod, podPort))
	switch {
	case allowed && err != nil:
		return "", fmt.Errorf("%s to %s (allowed by %s): %w", id.Email, pod, by, err)
	case !allowed && err == nil:
		return "", fmt.Errorf("%s reached %s (%q) although %s blocks it", id.Email, pod, f.Body, by)
	case allowed:
		parts = append(parts, fmt.Sprintf("curl %s: %q", pod, f.Body))
	default:
		parts = append(parts, fmt.Sprintf("curl %s refused (%s): %s", pod, by, fromLast(err.Error(), "curl: ")))
	}
	if _, err := dig(ns, "@"+c.lb+" "+fqdn(c.env)+" A"); (err == nil) != allowed {
		return "", fmt.Errorf("%s to the resolver %s: answered %v, allowed %v", id.Email, c.lb, err == nil, allowed)
	}
	if !allowed {
		parts = append(parts, "resolver "+c.lb+" refused")
	}
	return strings.Join(parts, "; "), nil
}

// accessMatrix runs accessCheck for one user and every environment.
func (w *world) accessMatrix(ns, src string) (string, error) {
	var details []string
	var errs []error
	for _, env := range []string{"stg", "prd"} {
		d, err := w.accessCheck(ns, src, w.envs[env])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", env, err))
			continue
		}
		details = append(details, env+": "+d)
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	return strings.Join(details, " | "), nil
}

// inAccess says whether the user at src is in env's access as the inputs
// give it (no access: everyone), what the policies must make true.
func (a *account) inAccess(env, src string) bool {
	access := a.access[env]
	if access == cty.NilVal || access.IsNull() {
		return true
	}
	id := labUsers[src]
	in := func(attr string, values ...string) bool {
		if !access.Type().HasAttribute(attr) {
			return false
		}
		for _, v := range access.GetAttr(attr).AsValueSlice() {
			if slices.Contains(values, v.AsString()) {
				return true
			}
		}
		return false
	}
	return in("groups", id.Groups...) || in("emails", id.Email)
}

func (a *account) describe(env, src string) string {
	if a.inAccess(env, src) {
		return "allowed"
	}
	return "denied"
}

// who describes a lab user.
func who(src string) string {
	id := labUsers[src]
	return fmt.Sprintf("%s in %s", id.Email, strings.Join(id.Groups, ", "))
}
