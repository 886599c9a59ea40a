// Package warpcheck tests tools/warp-check.sh, the script a person runs on a
// laptop with WARP on, against what `make run` runs: a real control plane
// with the demo world and our coredns with Corefile.example on loopback (the
// VPC-facing listener standing in for the load balancer, and for Gateway
// when the resolver policy works), plus small loopback servers that stand in
// for the ways it fails: a resolver that answers NXDOMAIN (no policy
// matched) or SERVFAIL (Gateway got nothing back), a load balancer that
// never answers (split tunnel or route missing), one whose TCP listener is
// missing, Gateway answering as a DNS Block policy does, and in-cluster DNS
// answering from AKS's and GKE's default Service ranges. On the laptop's
// side, warp-cli prints its settings in a current and an old format, and
// the system resolver as browsers use it (getent, resolvectl, dscacheutil)
// is a stand-in in fakes/ that routes names as glibc's NSS with nss-mdns,
// systemd-resolved and mDNSResponder do, .local included.
package warpcheck

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/warpdns/warpdns/test/cluster"
	"github.com/warpdns/warpdns/test/e2e/ldf"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// world is what the tests share: make run's coredns twice (Corefile.example,
// and the same with envalias' domain form), and the demo world.
type world struct {
	script    string // tools/warp-check.sh
	vpc       string // 127.0.0.1:port, the VPC-facing listener (kube-dns-nlb)
	inCluster string // 127.0.0.1:port, the in-cluster listener (kube-dns)
	ldfVPC    string // VPC-facing listener of the domain-form coredns
	demo      cluster.Demo
}

func start(t *testing.T) *world {
	t.Helper()
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig is not installed (apt-get install dnsutils; .ci/run installs it): warp-check.sh is a dig script")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	e := cluster.SharedEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	demo, err := cluster.SeedDemo(ctx, e.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{script: repoFile(t, "tools", "warp-check.sh"), demo: demo}
	ports := e.RunExampleForTest(t, e.Example).Ports
	w.inCluster, w.vpc = ports.DNSAddr(), ports.VPCAddr()
	// The domain form, for Local Domain Fallback: the same Corefile with
	// `envalias stg { domain k8s.example.com }` and the key
	// stg.k8s.example.com:5353 beside cluster.local:5353 (docs/deploy.md;
	// Corefile.example: "add that domain as a key too").
	ldf := strings.Replace(e.Example, "    envalias stg\n", "    envalias stg {\n        domain k8s.example.com\n    }\n", 1)
	if ldf == e.Example {
		t.Fatal("Corefile.example has no `    envalias stg` line")
	}
	w.ldfVPC = cluster.RunForTest(t, e.OurBin, func(p cluster.Ports) (string, error) {
		local, err := cluster.RenderLocal(ldf, p.Local(e.Kubeconfig, cluster.NoUpstream))
		if err != nil {
			return "", err
		}
		key := regexp.MustCompile(fmt.Sprintf(`(?m)^(\.:%d \S+:%d)( \{)$`, p.DNS, p.VPC))
		if !key.MatchString(local) {
			return "", fmt.Errorf("rendered Corefile: no server block key line for ports %d and %d:\n%s", p.DNS, p.VPC, local)
		}
		return key.ReplaceAllString(local, fmt.Sprintf("${1} stg.k8s.example.com:%d${2}", p.VPC)), nil
	}).Ports.VPCAddr()
	return w
}

// ipv6World is make run's coredns listening on ::1 as well, with two
// Services of the demo namespace that have IPv6 endpoints.
type ipv6World struct {
	vpc, inCluster         string // [::1]:port, the VPC-facing and in-cluster listeners
	dualReady4, dualReady6 string // Service dual (dual-stack): its pods' IPs, sorted
	only6Ready             string // Service only6 (IPv6 only): its pod's IP
	only6ClusterIP         string
}

func startIPv6(t *testing.T) ipv6World {
	t.Helper()
	e := cluster.SharedEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v6 := ipv6World{dualReady4: "10.244.7.10 10.244.8.11", dualReady6: "fd00:10:244:7::a fd00:10:244:8::b", only6Ready: "fd00:10:244:9::c"}
	families := map[string]struct {
		policy   corev1.IPFamilyPolicy
		families []corev1.IPFamily
		eps      []cluster.Endpoint
	}{
		"dual": {corev1.IPFamilyPolicyRequireDualStack, []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}, []cluster.Endpoint{
			{IP: "10.244.7.10", Pod: "dual-0", NodeName: "node-a"}, {IP: "10.244.8.11", Pod: "dual-1", NodeName: "node-b"},
			{IP: "fd00:10:244:7::a", Pod: "dual-0", NodeName: "node-a"}, {IP: "fd00:10:244:8::b", Pod: "dual-1", NodeName: "node-b"}}},
		"only6": {corev1.IPFamilyPolicySingleStack, []corev1.IPFamily{corev1.IPv6Protocol}, []cluster.Endpoint{
			{IP: "fd00:10:244:9::c", Pod: "only6-0", NodeName: "node-c"}}},
	}
	for name, f := range families {
		svc := cluster.ClusterIPService(cluster.DemoNamespace, name)
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &f.policy, f.families
		created, err := e.Cluster.CreateService(ctx, svc)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Cluster.SetEndpoints(ctx, created, f.eps, nil); err != nil {
			t.Fatal(err)
		}
		if name == "only6" {
			v6.only6ClusterIP = created.Spec.ClusterIP
		}
	}
	ports := cluster.RunForTest(t, e.OurBin, func(p cluster.Ports) (string, error) {
		l := p.Local(e.Kubeconfig, cluster.NoUpstream)
		l.Bind = []string{"127.0.0.1", "::1"}
		return cluster.RenderLocal(e.Example, l)
	}).Ports
	v6.vpc, v6.inCluster = fmt.Sprintf("[::1]:%d", ports.VPC), fmt.Sprintf("[::1]:%d", ports.DNS)
	return v6
}

// repoFile is the path of a file of the repository.
func repoFile(t *testing.T, elem ...string) string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// anyExit is check's exit argument for a run whose exit status is not checked.
const anyExit = -1

// check runs warp-check.sh with env added to the environment, checks its
// exit status and returns its output. No warp-cli, getent, resolvectl or
// dscacheutil of the machine's is used unless env names one (they point
// nowhere).
func (w *world) check(t *testing.T, exit int, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{w.script}, args...)...)
	cmd.Env = append(append(os.Environ(), "WARPCLI=/nonexistent/warp-cli", "GETENT=/nonexistent/getent",
		"RESOLVECTL=/nonexistent/resolvectl", "DSCACHEUTIL=/nonexistent/dscacheutil"), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("warp-check.sh: %v\n%s", err, out)
	}
	t.Logf("warp-check.sh %s\n%s(exit %d)", strings.Join(args, " "), out, code)
	if exit != anyExit && code != exit {
		t.Errorf("warp-check.sh %s: exit %d, want %d", strings.Join(args, " "), code, exit)
	}
	return string(out)
}

// line finds the output line of one check: result, env and path.
func line(t *testing.T, out, result, env, path string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + result + `\s+` + env + `\s+` + regexp.QuoteMeta(path) + `\s.*$`)
	l := re.FindString(out)
	if l == "" {
		t.Errorf("no %s line for %s %s in:\n%s", result, env, path, out)
	}
	return l
}

func wantIn(t *testing.T, l string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(l, p) {
			t.Errorf("line %q lacks %q", l, p)
		}
	}
}

// fakeResolver answers every query with rcode: Gateway answering NXDOMAIN
// (no resolver policy matched; the public resolver knows no such name) or
// SERVFAIL (the policy matched but the private resolver did not answer).
func fakeResolver(t *testing.T, rcode int) string {
	return udpServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		w.WriteMsg(new(dns.Msg).SetRcode(r, rcode))
	})
}

// udpServer serves DNS over UDP only on a loopback port.
func udpServer(t *testing.T, handle dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: handle}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// warpCLIFormat is how a WARP client prints its settings: the file in
// testdata (see testdata/README.md) and the command that prints it.
type warpCLIFormat struct{ file, command string }

var (
	// current clients: `warp-cli settings list`, headers prefixed with the
	// setting's source; `warp-cli settings` alone wants a subcommand.
	warpCLICurrent = warpCLIFormat{"warp-cli-settings-list.txt", "settings list"}
	// clients of 2022: `warp-cli settings`, bare headers.
	warpCLI2022 = warpCLIFormat{"warp-cli-settings-2022.txt", "settings"}
)

// fakeWarpCLI is a warp-cli that prints its settings in format, with the
// profile's fallback entries (one a line, as the client lists them), and
// `status` as connected.
func fakeWarpCLI(t *testing.T, format warpCLIFormat, entries []string) string {
	t.Helper()
	settings, err := os.ReadFile(filepath.Join("testdata", format.file))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(settings), "{{fallback}}", "  "+strings.Join(entries, "\n  "), 1)
	script := "#!/bin/sh\ncase \"$*\" in\nstatus) echo 'Status update: Connected' ;;\n'" + format.command + "') cat <<'EOF'\n" + text +
		"EOF\n;;\n*) echo \"error: unrecognized subcommand '$*'\" >&2; exit 2 ;;\nesac\n"
	path := filepath.Join(t.TempDir(), "warp-cli")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// systemResolver is the environment that makes warp-check.sh ask the
// stand-ins in fakes/ for the system resolver as browsers use it: tools
// among getent, resolvectl and dscacheutil, whose unicast DNS (WARP's
// proxy) is dnsServer, glibc's NSS configured with the hosts line nss.
func systemResolver(t *testing.T, dnsServer, nss string, tools ...string) []string {
	t.Helper()
	nsswitch := filepath.Join(t.TempDir(), "nsswitch.conf")
	if err := os.WriteFile(nsswitch, []byte("passwd: files\nhosts: "+nss+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"FAKE_DNS=" + dnsServer, "NSSWITCH_CONF=" + nsswitch}
	for _, tool := range tools {
		env = append(env, strings.ToUpper(tool)+"="+repoFile(t, "test", "warpcheck", "fakes", tool))
	}
	return env
}

// The hosts lines of /etc/nsswitch.conf the stand-ins model: with
// libnss-mdns (the avahi/nss-mdns README's Debian example), with
// systemd-resolved's nss-resolve as well (the line public Ubuntu and Arch
// setups show: mdns4_minimal [NOTFOUND=return] before resolve
// [!UNAVAIL=return]), and glibc's plain one.
const (
	nssMDNS     = "files mdns4_minimal [NOTFOUND=return] dns"
	nssResolved = "files mdns4_minimal [NOTFOUND=return] resolve [!UNAVAIL=return] dns"
	nssPlain    = "files dns"
)

// staticResolver answers each question with what answer says (no records:
// NOERROR and none; nil: NXDOMAIN).
func staticResolver(t *testing.T, answer func(q dns.Question) []dns.RR) string {
	return udpServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		if rrs := answer(r.Question[0]); rrs == nil {
			m.SetRcode(r, dns.RcodeNameError)
		} else {
			m.Answer = rrs
		}
		w.WriteMsg(m)
	})
}

// rr is the A or AAAA record (as q asks) of q's name with address ip.
func rr(q dns.Question, ip string) dns.RR {
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 30}
	if q.Qtype == dns.TypeAAAA {
		return &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP(ip)}
	}
	return &dns.A{Hdr: hdr, A: net.ParseIP(ip)}
}

// gatewayBlock stands in for Gateway with a DNS policy whose Block action
// matches the names blocked matches, answering them as Cloudflare documents:
// "If the block page is turned off for a policy, Gateway will respond to
// queries blocked at the DNS level with an A record of 0.0.0.0 for IPv4
// destinations, or with an AAAA record of :: for IPv6 destinations"; with
// the block page on, the block page's addresses, 162.159.36.12 and
// 162.159.46.12 (IPv4 only: for AAAA Cloudflare documents none, so no
// record); other record types get REFUSED
// (https://developers.cloudflare.com/cloudflare-one/traffic-policies/dns-policies/#block,
// .../route-traffic/split-tunnels/ "Block page"). A blocked name is never
// NXDOMAIN. Other names go to next, as the resolver policy sends them.
func gatewayBlock(t *testing.T, blocked *regexp.Regexp, blockPage bool, next string) string {
	return udpServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		q := r.Question[0]
		if !blocked.MatchString(q.Name) {
			if resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(r, next); err == nil {
				w.WriteMsg(resp)
			}
			return
		}
		m := new(dns.Msg).SetReply(r)
		switch {
		case q.Qtype != dns.TypeA && q.Qtype != dns.TypeAAAA:
			m.SetRcode(r, dns.RcodeRefused)
		case blockPage && q.Qtype == dns.TypeA:
			m.Answer = []dns.RR{rr(q, "162.159.36.12"), rr(q, "162.159.46.12")}
		case !blockPage && q.Qtype == dns.TypeA:
			m.Answer = []dns.RR{rr(q, "0.0.0.0")}
		case !blockPage:
			m.Answer = []dns.RR{rr(q, "::")}
		}
		w.WriteMsg(m)
	})
}

// silentLB is a load balancer IP that never answers: queries vanish, as when
// WARP does not route the IP or no tunnel route covers it. Nothing reads the
// UDP socket, and the kernel completes TCP handshakes into the listen backlog
// that nobody accepts: connected, never answered.
func silentLB(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); l.Close() })
	return pc.LocalAddr().String()
}

// udpOnlyLB forwards UDP queries to upstream and has no TCP listener behind
// its port: a load balancer with only a UDP listener on 53.
func udpOnlyLB(t *testing.T, upstream string) string {
	return udpServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(r, upstream); err == nil {
			w.WriteMsg(resp)
		}
	})
}

func TestWarpCheck(t *testing.T) {
	w := start(t)
	svcCIDR := cluster.ServiceCIDRv4
	ips := strings.Join(w.demo.APIReadyIPs, " ")

	t.Run("all pass", func(t *testing.T) {
		out := w.check(t, 0, nil, "-r", w.vpc, "-s", svcCIDR, "api.platform", "stg="+w.vpc)
		name := "stg-api.platform.svc.cluster.local"
		for _, path := range []string{"resolver " + w.vpc, "lb " + w.vpc + "/udp", "lb " + w.vpc + "/tcp"} {
			wantIn(t, line(t, out, "PASS", "stg", path), name, ips)
		}
		wantIn(t, out, "warp-check: 3 of 3 checks passed")
	})

	t.Run("environment not configured: NXDOMAIN, envalias ENV or policy regex", func(t *testing.T) {
		out := w.check(t, 1, nil, "-r", w.vpc, "-s", svcCIDR, "api.platform", "qa="+w.vpc)
		wantIn(t, line(t, out, "FAIL", "qa", "resolver "+w.vpc), "qa-api.platform.svc.cluster.local", "NXDOMAIN", "likely cause", "envalias qa", "resolver policy regex")
		wantIn(t, line(t, out, "FAIL", "qa", "lb "+w.vpc+"/udp"), "NXDOMAIN", "envalias qa")
	})

	t.Run("no policy matches: NXDOMAIN from the resolver, the load balancer answers", func(t *testing.T) {
		gateway := fakeResolver(t, dns.RcodeNameError)
		out := w.check(t, 1, nil, "-r", gateway, "-s", svcCIDR, "api.platform", "stg="+w.vpc)
		wantIn(t, line(t, out, "FAIL", "stg", "resolver "+gateway), "NXDOMAIN", "resolver policy regex")
		line(t, out, "PASS", "stg", "lb "+w.vpc+"/udp")
	})

	t.Run("Gateway gets no answer: SERVFAIL, resolver IP or virtual network", func(t *testing.T) {
		gateway := fakeResolver(t, dns.RcodeServerFailure)
		out := w.check(t, anyExit, nil, "-r", gateway, "-s", svcCIDR, "api.platform", "stg")
		wantIn(t, line(t, out, "FAIL", "stg", "resolver "+gateway), "SERVFAIL", "vnet_id")
	})

	t.Run("in-cluster listener as the VPC path: ClusterIP, headlessonly not active", func(t *testing.T) {
		out := w.check(t, 1, nil, "-r", w.inCluster, "-s", svcCIDR, "api.platform", "stg="+w.inCluster)
		for _, path := range []string{"resolver " + w.inCluster, "lb " + w.inCluster + "/udp"} {
			wantIn(t, line(t, out, "FAIL", "stg", path), w.demo.APIClusterIP, "answer in the Service CIDR "+svcCIDR, "headlessonly not active")
		}
	})

	t.Run("load balancer silent: timeout, split tunnel or route", func(t *testing.T) {
		lb := silentLB(t)
		out := w.check(t, 1, nil, "-t", "1", "-r", w.vpc, "-s", svcCIDR, "api.platform", "stg="+lb)
		wantIn(t, line(t, out, "FAIL", "stg", "lb "+lb+"/udp"), "TIMEOUT", "Split Tunnel", "route")
		line(t, out, "FAIL", "stg", "lb "+lb+"/tcp")
		line(t, out, "PASS", "stg", "resolver "+w.vpc)
	})

	t.Run("no TCP listener: UDP passes, TCP fails", func(t *testing.T) {
		lb := udpOnlyLB(t, w.vpc)
		out := w.check(t, anyExit, nil, "-t", "1", "-r", w.vpc, "-s", svcCIDR, "api.platform", "stg="+lb)
		line(t, out, "PASS", "stg", "lb "+lb+"/udp")
		wantIn(t, line(t, out, "FAIL", "stg", "lb "+lb+"/tcp"), "TCP")
	})

	t.Run("Local Domain Fallback: the domain form", func(t *testing.T) {
		out := w.check(t, 0, nil, "-d", "k8s.example.com", "-r", w.ldfVPC, "-s", svcCIDR, "api.platform", "stg="+w.ldfVPC)
		wantIn(t, line(t, out, "PASS", "stg", "resolver "+w.ldfVPC), "api.platform.stg.k8s.example.com", ips)
	})

	t.Run("domain form against a Corefile without its key: REFUSED", func(t *testing.T) {
		out := w.check(t, anyExit, nil, "-d", "k8s.example.com", "-r", w.vpc, "-s", svcCIDR, "api.platform", "stg="+w.vpc)
		wantIn(t, line(t, out, "FAIL", "stg", "lb "+w.vpc+"/udp"), "REFUSED", "stg.k8s.example.com:5353")
	})

	// WARP's Local Domain Fallback keeps the name on the laptop: the
	// laptop's own resolver (a home router) says NXDOMAIN, while Gateway's
	// path (the load balancer) answers. The fallback list comes from
	// warp-cli, here a stand-in printing a current client's format (and,
	// once, a 2022 client's) with Cloudflare's default list, as the
	// device-profile module holds it, plus an entry of the organisation's
	// with a description and its own DNS server.
	profile, err := ldf.Evaluate(repoFile(t, "manifests", "cloudflare", "modules", "device-profile"), nil)
	if err != nil {
		t.Fatal(err)
	}
	def := profile.Default
	for _, c := range []struct {
		format  warpCLIFormat
		entries []string
		domains []string
	}{
		{warpCLICurrent, append(slices.Clone(def), "corp.example.com (corp resolver) -> [10.20.0.2]"), append(slices.Clone(def), "corp.example.com")},
		{warpCLI2022, def, def},
	} {
		t.Run("Local Domain Fallback swallows cluster.local, "+c.format.command+": NXDOMAIN on the laptop, the Gateway path answers, the fix printed", func(t *testing.T) {
			homeRouter := fakeResolver(t, dns.RcodeNameError)
			cli := fakeWarpCLI(t, c.format, c.entries)
			out := w.check(t, 1, []string{"WARPCLI=" + cli}, "-r", homeRouter, "-s", svcCIDR, "api.platform", "stg="+w.vpc)
			wantIn(t, out, "Local Domain Fallback domains: "+strings.Join(c.domains, " "))
			wantIn(t, line(t, out, "FAIL", "stg", "resolver "+homeRouter), "NXDOMAIN", "Local Domain Fallback",
				"fallback domain 'local'", "load balancer "+w.vpc, ips, "remove 'local'", "manifests/cloudflare/modules/device-profile")
			line(t, out, "PASS", "stg", "lb "+w.vpc+"/udp")

			// The same with -g (the Gateway path given) and a timeout from the
			// laptop's resolver.
			silent := silentLB(t)
			out = w.check(t, 1, []string{"WARPCLI=" + cli}, "-t", "1", "-r", silent, "-g", w.vpc, "-s", svcCIDR, "api.platform", "stg") // one check, failed
			wantIn(t, out, "warp-check: 0 of 1 checks passed")
			wantIn(t, line(t, out, "FAIL", "stg", "resolver "+silent), "TIMEOUT", "fallback domain 'local'", "Gateway path ("+w.vpc+")")
		})
	}
	t.Run("Local Domain Fallback without local: the NXDOMAIN is another's", func(t *testing.T) {
		// With the module's list (no local), the same NXDOMAIN is not
		// Local Domain Fallback's doing.
		homeRouter := fakeResolver(t, dns.RcodeNameError)
		out := w.check(t, anyExit, nil, "-f", "intranet,lan,home.arpa", "-r", homeRouter, "-s", svcCIDR, "api.platform", "stg="+w.vpc)
		l := line(t, out, "FAIL", "stg", "resolver "+homeRouter)
		wantIn(t, l, "resolver policy regex")
		if strings.Contains(l, "Local Domain Fallback:") {
			t.Errorf("blames Local Domain Fallback without a matching entry: %s", l)
		}
	})

	// dig asks the system's nameserver directly; a browser calls
	// getaddrinfo, which on Debian/Ubuntu hands .local to nss-mdns first and
	// under systemd-resolved goes to multicast DNS: the name resolves with
	// dig and not in the browser. The stand-ins' unicast DNS is the
	// resolver dig asks (WARP's proxy, here answering as Gateway would).
	name := "stg-api.platform.svc.cluster.local"
	t.Run("system resolver, nss-mdns: dig resolves, getaddrinfo keeps .local on mDNS", func(t *testing.T) {
		env := systemResolver(t, w.vpc, nssMDNS, "getent")
		out := w.check(t, 1, env, "-r", w.vpc, "-s", svcCIDR, "api.platform", "stg")
		line(t, out, "PASS", "stg", "resolver "+w.vpc)
		wantIn(t, line(t, out, "FAIL", "stg", "system getent"), name, "not found", "dig (resolver "+w.vpc+") resolves it to "+ips,
			"browsers use does not", "nss-mdns", "[NOTFOUND=return]", "domain form (-d")

		// The domain form is no .local name: nss-mdns lets it pass to DNS.
		out = w.check(t, 0, systemResolver(t, w.ldfVPC, nssMDNS, "getent"), "-d", "k8s.example.com", "-r", w.ldfVPC, "-s", svcCIDR, "api.platform", "stg")
		wantIn(t, line(t, out, "PASS", "stg", "system getent"), "api.platform.stg.k8s.example.com", ips)

		// Without nss-mdns, getaddrinfo asks DNS like dig.
		env = systemResolver(t, w.vpc, nssPlain, "getent")
		out = w.check(t, 0, env, "-r", w.vpc, "-s", svcCIDR, "api.platform", "stg")
		wantIn(t, line(t, out, "PASS", "stg", "system getent"), ips)
	})

	t.Run("system resolver, systemd-resolved: .local goes to mDNS unless a routing domain says otherwise", func(t *testing.T) {
		env := systemResolver(t, w.vpc, nssResolved, "getent", "resolvectl")
		out := w.check(t, 1, env, "-r", w.vpc, "-s", svcCIDR, "api.platform", "stg")
		wantIn(t, out, "the system resolver as browsers use it: getent resolvectl")
		wantIn(t, line(t, out, "FAIL", "stg", "system resolvectl"), "No appropriate name servers or networks for name found",
			"dig (resolver "+w.vpc+") resolves it", "multicast DNS", "Domains=~cluster.local", "resolved.conf")
		wantIn(t, line(t, out, "FAIL", "stg", "system getent"), "dig (resolver "+w.vpc+") resolves it", "nss-mdns")

		// Without nss-mdns, nss-resolve hands it to systemd-resolved.
		env = systemResolver(t, w.vpc, "files resolve [!UNAVAIL=return] dns", "getent", "resolvectl")
		out = w.check(t, 1, env, "-r", w.vpc, "-s", svcCIDR, "api.platform", "stg")
		wantIn(t, line(t, out, "FAIL", "stg", "system getent"), "nss-resolve", "systemd-resolved")

		// The fix: cluster.local as a routing domain.
		env = append(env, "FAKE_RESOLVED_DOMAINS=~cluster.local")
		out = w.check(t, 0, env, "-r", w.vpc, "-s", svcCIDR, "api.platform", "stg")
		wantIn(t, line(t, out, "PASS", "stg", "system resolvectl"), ips, "(via protocol DNS)")
		line(t, out, "PASS", "stg", "system getent")
	})

	t.Run("system resolver, macOS: mDNSResponder asks unicast DNS for multi-label .local names", func(t *testing.T) {
		out := w.check(t, 0, systemResolver(t, w.vpc, nssPlain, "dscacheutil"), "-r", w.vpc, "-s", svcCIDR, "api.platform", "stg")
		wantIn(t, line(t, out, "PASS", "stg", "system dscacheutil"), name, ips)

		// Where the resolver path fails, the system resolver fails with it.
		homeRouter := fakeResolver(t, dns.RcodeNameError)
		out = w.check(t, 1, systemResolver(t, homeRouter, nssPlain, "dscacheutil"), "-r", homeRouter, "-s", svcCIDR, "api.platform", "stg")
		wantIn(t, line(t, out, "FAIL", "stg", "system dscacheutil"), "no address", "as the resolver path")
	})

	// A user outside an environment's access list: Gateway's DNS Block
	// policy answers for prd's names, the resolver policy is not at fault,
	// and the network policies keep the user from prd's load balancer too.
	t.Run("Gateway DNS block: not allowed for your identity", func(t *testing.T) {
		prd := regexp.MustCompile(`(^|\.)prd-[^.]+\.[^.]+\.svc\.cluster\.local\.$`)
		for _, blockPage := range []bool{false, true} {
			gateway := gatewayBlock(t, prd, blockPage, w.vpc)
			denied := silentLB(t)
			out := w.check(t, 1, systemResolver(t, gateway, nssPlain, "getent"), "-t", "1", "-r", gateway, "-s", svcCIDR, "api.platform", "stg="+w.vpc, "prd="+denied)
			line(t, out, "PASS", "stg", "resolver "+gateway)
			want := "0.0.0.0 ::"
			if blockPage {
				want = "162.159.36.12 162.159.46.12"
			}
			for _, path := range []string{"resolver " + gateway, "system getent"} {
				l := line(t, out, "FAIL", "prd", path)
				wantIn(t, l, "prd-api.platform.svc.cluster.local", want, "Gateway DNS", "not allowed for your identity", "access")
				if strings.Contains(l, "regex") {
					t.Errorf("blames the resolver policy for a block: %s", l)
				}
			}
			wantIn(t, line(t, out, "FAIL", "prd", "lb "+denied+"/udp"), "TIMEOUT", "network policies keep your identity")
		}
	})

	// Without -s, each platform's default Service range: an answer from an
	// AKS or GKE cluster's in-cluster DNS (a ClusterIP) fails, IPv6 too.
	t.Run("default Service CIDRs: AKS and GKE", func(t *testing.T) {
		for _, c := range []struct {
			a, aaaa, cidr, owner string
		}{
			{"10.0.143.7", "", "10.0.0.0/16", "AKS's default"},
			{"", "fd12:3456:789a:1::4:1", "fd12:3456:789a:1::/108", "AKS's default"},
			{"34.118.229.12", "", "34.118.224.0/20", "GKE's default"},
		} {
			kubeDNS := staticResolver(t, func(q dns.Question) []dns.RR {
				switch {
				case q.Qtype == dns.TypeA && c.a != "":
					return []dns.RR{rr(q, c.a)}
				case q.Qtype == dns.TypeAAAA && c.aaaa != "":
					return []dns.RR{rr(q, c.aaaa)}
				}
				return []dns.RR{}
			})
			out := w.check(t, 1, nil, "-r", kubeDNS, "api.platform", "stg")
			wantIn(t, line(t, out, "FAIL", "stg", "resolver "+kubeDNS), "answer in the Service CIDR "+c.cidr, c.owner, "headlessonly not active")
		}
	})

	t.Run("IPv6: AAAA answers, load balancer and resolver on IPv6, IPv6 Service CIDRs", func(t *testing.T) {
		v6 := startIPv6(t)
		cidrs := []string{"-s", svcCIDR, "-s", cluster.ServiceCIDRv6}
		// A dual-stack Service: pod IPs of both families, over IPv6.
		out := w.check(t, 0, systemResolver(t, v6.vpc, nssPlain, "getent", "dscacheutil"), append(cidrs, "-r", v6.vpc, "dual.platform", "stg="+v6.vpc)...)
		for _, path := range []string{"resolver " + v6.vpc, "system getent", "system dscacheutil", "lb " + v6.vpc + "/udp", "lb " + v6.vpc + "/tcp"} {
			wantIn(t, line(t, out, "PASS", "stg", path), "stg-dual.platform.svc.cluster.local", v6.dualReady4, v6.dualReady6)
		}
		// An IPv6-only Service: AAAA only.
		out = w.check(t, 0, nil, append(cidrs, "-r", v6.vpc, "only6.platform", "stg="+v6.vpc)...)
		wantIn(t, line(t, out, "PASS", "stg", "lb "+v6.vpc+"/udp"), v6.only6Ready)
		// The in-cluster listener answers its IPv6 ClusterIP.
		out = w.check(t, 1, nil, append(cidrs, "-r", v6.inCluster, "only6.platform", "stg="+v6.inCluster)...)
		for _, path := range []string{"resolver " + v6.inCluster, "lb " + v6.inCluster + "/udp"} {
			wantIn(t, line(t, out, "FAIL", "stg", path), v6.only6ClusterIP, "answer in the Service CIDR "+cluster.ServiceCIDRv6, "headlessonly not active")
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{{}, {"api.platform"}, {"api", "stg"}, {"api.platform", "stg=not-an-ip"}, {"-s", "10.96.0.0", "api.platform", "stg"},
			{"-s", "fd00::/129", "api.platform", "stg"}, {"-s", "fd00:::/64", "api.platform", "stg"}, {"api.platform", "stg=[::1]:x"}, {"api.platform", "stg=fd00::1::2"}} {
			w.check(t, 2, nil, args...)
		}
	})
}

// TestShellcheck lints the script, and the stand-ins it is tested with (they
// run as /bin/sh), where shellcheck is installed.
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed")
	}
	if out, err := exec.Command(sc, repoFile(t, "tools", "warp-check.sh")).CombinedOutput(); err != nil {
		t.Errorf("shellcheck tools/warp-check.sh: %v\n%s", err, out)
	}
	fakes := repoFile(t, "test", "warpcheck", "fakes")
	cmd := exec.Command(sc, "-x", "-s", "sh", "lib.sh", "getent", "resolvectl", "dscacheutil")
	cmd.Dir = fakes
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck %s: %v\n%s", fakes, err, out)
	}
}
