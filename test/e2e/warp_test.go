package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/warpdns/warpdns/test/e2e/ldf"
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

// warpCorefile is the WARP client's DNS proxy on the laptop, listening on
// bind, deciding as the client does (test/e2e/ldf): a name under an entry
// of the profile's Local Domain Fallback list goes to the entry's DNS
// servers, or to the resolver the laptop had before WARP (the home router);
// every other name goes to Gateway. CoreDNS picks the longest matching
// zone, as an entry covers every name below it.
func warpCorefile(p *ldf.Profile, bind string) string {
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
	fmt.Fprintf(&b, ".:53 {\n    bind %s\n    forward . %s\n}\n", bind, hostport(gatewayIP, 53))
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
// Cloudflare's default list, and the home router.
func laptopCorefile(ours *ldf.Profile) string {
	return warpCorefile(ours, warpProxyIP) + warpCorefile(ours.DefaultProfile(), warpDefaultProxyIP) + routerCorefile()
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
