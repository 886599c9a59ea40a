package e2e

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/warpdns/warpdns/test/e2e/ldf"
	"github.com/warpdns/warpdns/test/e2e/tf"
)

// deviceProfileModule is the Terraform module whose Local Domain Fallback
// list the laptop's WARP stand-in uses. WARPDNS_E2E_DEVICE_PROFILE points
// the run at another copy of it (to see an older module fail).
func deviceProfileModule(root string) string {
	if dir := os.Getenv("WARPDNS_E2E_DEVICE_PROFILE"); dir != "" {
		return dir
	}
	return filepath.Join(root, "manifests", "cloudflare", "modules", "device-profile")
}

// environmentModule is the environment module the run uses,
// manifests/cloudflare/modules/environment; WARPDNS_E2E_ENVIRONMENT points
// it at another copy (to see an older one fail).
func environmentModule(root string) string {
	if dir := os.Getenv("WARPDNS_E2E_ENVIRONMENT"); dir != "" {
		return dir
	}
	return filepath.Join(root, "manifests", "cloudflare", "modules", "environment")
}

// labProfile evaluates the device profile the lab laptop gets: the
// device-profile module with every lab cluster's split_tunnel_include
// output (the environment module evaluated for that cluster), as
// examples/stg-prd wires them, and the organisation's lists left at their
// defaults (Cloudflare's).
func labProfile(root string, envs map[string]*tf.Values) (*ldf.Profile, error) {
	var include []cty.Value
	for _, env := range []string{"stg", "prd"} {
		out, err := envs[env].Output("split_tunnel_include")
		if err != nil {
			return nil, err
		}
		include = append(include, out.AsValueSlice()...)
	}
	return ldf.Evaluate(deviceProfileModule(root), map[string]cty.Value{"include": cty.TupleVal(include)})
}

// routeWARP installs the WARP client's routes on the laptop as the
// profile's Split Tunnels decide (test/e2e/ldf): the tunnel is the link to
// the gateway. Exclude mode: a default route into the tunnel, and each
// excluded range kept out of it. Out of the tunnel means the laptop's own
// network (its Wi-Fi), of which the lab has nothing beyond the home router
// on lo: those routes are unreachable. Include mode: a route into the
// tunnel per included range. Domain entries add routes as names resolve;
// the lab's (*.svc.cluster.local, in Include mode) resolve inside the VPC
// ranges, which are routed already. IPv4 only, as the lab's networks.
func routeWARP(laptop, gateway string, s *ldf.SplitTunnel) error {
	if s.Mode == ldf.Exclude {
		if err := ip("-n", laptop, "route", "add", "default", "via", gateway); err != nil {
			return err
		}
	}
	for _, r := range s.Routes {
		if !r.Prefix.IsValid() || !r.Prefix.Addr().Is4() {
			continue
		}
		args := []string{"-n", laptop, "route", "add", r.Prefix.String(), "via", gateway}
		if s.Mode == ldf.Exclude {
			args = []string{"-n", laptop, "route", "add", "unreachable", r.Prefix.String()}
		}
		if err := ip(args...); err != nil {
			return err
		}
	}
	return nil
}

// throughWARP says whether the laptop's kernel sends traffic for addr into
// the tunnel (via the gateway), and what ip route get said.
func (tp *topology) throughWARP(addr string) (bool, string) {
	out, err := exec.Command("ip", "-n", tp.laptop, "route", "get", addr).CombinedOutput()
	said := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	return err == nil && strings.Contains(said, " via "+gatewayIP+" "), said
}

// splitTunnels: the laptop's routes, set from the device-profile module's
// Split Tunnels, send the cluster VPCs through WARP and, as the
// organisation's profile did (Cloudflare's default Exclude mode), the rest
// of the Internet too, so that Gateway still filters it; the home network
// and the organisation's other private ranges stay out.
func (w *world) splitTunnels() (string, error) {
	stg, prd := w.envs["stg"], w.envs["prd"]
	probes := []struct {
		addr, what string
		through    bool
	}{
		{stg.pods[0], "a stg pod", true},
		{prd.pods[0], "a prd pod", true},
		{stg.lb, "stg's kube-dns-nlb", true},
		{"198.51.100.7", "the Internet (Gateway filters it)", true},
		{"192.168.1.77", "the home network (192.168.0.0/16, Cloudflare's default exclude list)", false},
		{"10.9.0.1", "another private network (10.0.0.0/8 of the default exclude list, no cluster)", false},
	}
	var errs, seen []string
	for _, p := range probes {
		model := w.profile.Split.Through().Contains(netip.MustParseAddr(p.addr))
		kernel, said := w.tp.throughWARP(p.addr)
		switch {
		case model != kernel:
			errs = append(errs, fmt.Sprintf("%s (%s): the profile says through WARP %v, the laptop's routes %v (%s)", p.addr, p.what, model, kernel, said))
		case model != p.through && p.through:
			errs = append(errs, fmt.Sprintf("%s (%s) leaves WARP with the module's %s-mode profile", p.addr, p.what, w.profile.Split.Mode))
		case model != p.through:
			errs = append(errs, fmt.Sprintf("%s (%s) goes through WARP with the module's %s-mode profile", p.addr, p.what, w.profile.Split.Mode))
		}
		verdict := "WARP"
		if !kernel {
			verdict = "not WARP"
		}
		seen = append(seen, p.addr+" "+verdict)
	}
	if len(errs) > 0 {
		return "", errors.New(strings.Join(errs, "; "))
	}
	return fmt.Sprintf("%s mode, %d entries: %s", w.profile.Split.Mode, len(w.profile.Split.Routes), strings.Join(seen, ", ")), nil
}

// warpCorefile is the WARP client's DNS proxy on the laptop, listening on
// bind, deciding as the client does (test/e2e/ldf): a name under an entry
// of the profile's Local Domain Fallback list goes to the entry's DNS
// servers, or to the resolver the laptop had before WARP (the home router);
// every other name goes to Gateway (at gateway). CoreDNS picks the longest
// matching zone, as an entry covers every name below it.
func warpCorefile(p *ldf.Profile, bind, gateway string) string {
	var b strings.Builder
	for _, d := range p.Domains {
		to := []string{hostport(routerIP, 53)}
		if len(d.DNSServer) > 0 {
			to = nil
			for _, ip := range d.DNSServer {
				to = append(to, hostport(ip, 53))
			}
		}
		fmt.Fprintf(&b, "%s:53 {\n    bind %s\n    forward . %s\n}\n", d.Suffix, bind, strings.Join(to, " "))
	}
	fmt.Fprintf(&b, ".:53 {\n    bind %s\n    forward . %s\n}\n", bind, hostport(gateway, 53))
	return b.String()
}

// routerCorefile is the laptop's home router: it knows no cluster names
// (NXDOMAIN for everything, as the public DNS it asks has no such names),
// and nothing leaves the namespace.
func routerCorefile() string {
	return fmt.Sprintf(`.:53 {
    bind %s
    template ANY ANY {
        rcode NXDOMAIN
        authority ". 30 IN SOA router.invalid. hostmaster.router.invalid. 1 7200 1800 86400 30"
    }
}
`, routerIP)
}

// laptopCorefile is what runs on the laptop: the WARP proxy with the
// profile from our Terraform module (the laptop's resolver), one with
// Cloudflare's default list, and the home router. laptop2 runs the first
// and the last.
func laptopCorefile(ours *ldf.Profile) string {
	return warpCorefile(ours, warpProxyIP, gatewayIP) + warpCorefile(ours.DefaultProfile(), warpDefaultProxyIP, gatewayIP) + routerCorefile()
}

func laptop2Corefile(ours *ldf.Profile) string {
	return warpCorefile(ours, warpProxyIP, gateway2IP) + routerCorefile()
}

// --- checks --------------------------------------------------------------

// ldfOurs: with our module's list the cluster names leave the laptop for
// Gateway (the digs through the laptop's resolver show them resolving).
func (w *world) ldfOurs() (string, error) {
	name := fqdn("stg")
	if d, ok := w.profile.Match(name); ok {
		return "", fmt.Errorf("the device-profile module's fallback list (%s) keeps %s on the laptop: entry %q sends it to %s, not to Gateway",
			strings.Join(w.profile.Suffixes(), " "), name, d.Suffix, orRouter(d.DNSServer))
	}
	rep, err := ask(w.tp.laptop, "@"+warpProxyIP+" "+name+" A", "NOERROR", w.envs["stg"].ready...)
	if err != nil {
		return "", fmt.Errorf("WARP proxy with the module's list: %w", err)
	}
	return fmt.Sprintf("%d entries (%s), no entry matches %s: to Gateway, A %s", len(w.profile.Domains),
		strings.Join(w.profile.Suffixes(), " "), strings.TrimSuffix(name, "."), strings.Join(addrs(rep.Answer), " ")), nil
}

// ldfDefault: with Cloudflare's default list the name stays on the laptop
// (entry local), the home router says NXDOMAIN, although the Gateway path
// answers; warp-check.sh, run on the laptop, says so and prints the fix.
func (w *world) ldfDefault() (string, error) {
	name := fqdn("stg")
	def := w.profile.DefaultProfile()
	d, ok := def.Match(name)
	if !ok {
		return "", fmt.Errorf("Cloudflare's default list (%s) no longer matches %s: revisit the module's comment", strings.Join(def.Suffixes(), " "), name)
	}
	if _, err := ask(w.tp.laptop, "@"+warpDefaultProxyIP+" "+name+" A", "NXDOMAIN"); err != nil {
		return "", fmt.Errorf("WARP proxy with the default list: %w", err)
	}
	if _, err := ask(w.tp.laptop, "@"+routerIP+" "+name+" A", "NXDOMAIN"); err != nil {
		return "", fmt.Errorf("home router: %w", err)
	}
	viaGateway, err := ask(w.tp.laptop, "@"+gatewayIP+" "+name+" A", "NOERROR", w.envs["stg"].ready...)
	if err != nil {
		return "", fmt.Errorf("gateway: %w", err)
	}

	out, err := inNetns(w.tp.laptop, "bash", filepath.Join(w.root, "tools", "warp-check.sh"),
		"-r", warpDefaultProxyIP, "-g", gatewayIP, "-f", strings.Join(def.Suffixes(), ","),
		"-s", "10.96.0.0/16", "api."+namespace, "stg").CombinedOutput()
	if err == nil {
		return "", fmt.Errorf("warp-check.sh passed against the default list:\n%s", out)
	}
	diagnosis := regexp.MustCompile(`(?m)^FAIL.*Local Domain Fallback:.*'` + regexp.QuoteMeta(d.Suffix) + `'.*$`).FindString(string(out))
	if diagnosis == "" {
		return "", fmt.Errorf("warp-check.sh does not blame Local Domain Fallback entry %q:\n%s", d.Suffix, out)
	}
	fix := diagnosis
	if f := regexp.MustCompile(`Fix: [^;]*`).FindString(diagnosis); f != "" {
		fix = f
	}
	return fmt.Sprintf("entry %q -> home router %s: NXDOMAIN; gateway: A %s; warp-check: %s", d.Suffix, routerIP,
		strings.Join(addrs(viaGateway.Answer), " "), fix), nil
}

func orRouter(servers []string) string {
	if len(servers) == 0 {
		return "the laptop's own resolver"
	}
	return strings.Join(servers, " ")
}
