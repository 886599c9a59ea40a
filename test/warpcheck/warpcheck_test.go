// Package warpcheck tests tools/warp-check.sh, the script a person runs on a
// laptop with WARP on, against what `make run` runs: a real control plane
// with the demo world and our coredns with Corefile.example on loopback (the
// VPC-facing listener standing in for the load balancer, and for Gateway
// when the resolver policy works), plus small loopback servers that stand in
// for the ways it fails: a resolver that answers NXDOMAIN (no policy
// matched) or SERVFAIL (Gateway got nothing back), a load balancer that
// never answers (split tunnel or route missing), and one whose TCP listener
// is missing.
package warpcheck

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

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
// exit status and returns its output. No warp-cli of the machine's is used
// unless env names one (WARPCLI points nowhere).
func (w *world) check(t *testing.T, exit int, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{w.script}, args...)...)
	cmd.Env = append(append(os.Environ(), "WARPCLI=/nonexistent/warp-cli"), env...)
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

// fakeWarpCLI is a warp-cli that prints `settings` as the WARP client does
// (the "Fallback domains:" section of its merged configuration) and
// `status` as connected.
func fakeWarpCLI(t *testing.T, fallback []string) string {
	t.Helper()
	script := "#!/bin/sh\ncase $1 in\nstatus) echo 'Status update: Connected' ;;\nsettings) cat <<'EOF'\n" +
		"Merged configuration:\nAlways On: false\nMode: Warp\nExclude mode, with hosts/ips:\n  \nFallback domains:\n" +
		"  " + strings.Join(fallback, "\n  ") + "\n" +
		"Daemon Teams Auth: false\nAllow Updates: true\nEOF\n;;\nesac\n"
	path := filepath.Join(t.TempDir(), "warp-cli")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
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
	// warp-cli, here a stand-in printing the client's format with
	// Cloudflare's default list, as the device-profile module holds it.
	t.Run("Local Domain Fallback swallows cluster.local: NXDOMAIN on the laptop, the Gateway path answers, the fix printed", func(t *testing.T) {
		homeRouter := fakeResolver(t, dns.RcodeNameError)
		profile, err := ldf.Evaluate(repoFile(t, "manifests", "cloudflare", "modules", "device-profile"), nil)
		if err != nil {
			t.Fatal(err)
		}
		def := profile.Default
		cli := fakeWarpCLI(t, def)
		out := w.check(t, 1, []string{"WARPCLI=" + cli}, "-r", homeRouter, "-s", svcCIDR, "api.platform", "stg="+w.vpc)
		wantIn(t, out, "Local Domain Fallback domains: "+strings.Join(def, " "))
		wantIn(t, line(t, out, "FAIL", "stg", "resolver "+homeRouter), "NXDOMAIN", "Local Domain Fallback",
			"fallback domain 'local'", "load balancer "+w.vpc, ips, "remove 'local'", "manifests/cloudflare/modules/device-profile")
		line(t, out, "PASS", "stg", "lb "+w.vpc+"/udp")

		// The same with -g (the Gateway path given) and a timeout from the
		// laptop's resolver.
		silent := silentLB(t)
		out = w.check(t, 1, []string{"WARPCLI=" + cli}, "-t", "1", "-r", silent, "-g", w.vpc, "-s", svcCIDR, "api.platform", "stg") // one check, failed
		wantIn(t, out, "warp-check: 0 of 1 checks passed")
		wantIn(t, line(t, out, "FAIL", "stg", "resolver "+silent), "TIMEOUT", "fallback domain 'local'", "Gateway path ("+w.vpc+")")

		// With the module's list (no local), the same NXDOMAIN is not
		// Local Domain Fallback's doing.
		out = w.check(t, anyExit, nil, "-f", "intranet,lan,home.arpa", "-r", homeRouter, "-s", svcCIDR, "api.platform", "stg="+w.vpc)
		l := line(t, out, "FAIL", "stg", "resolver "+homeRouter)
		wantIn(t, l, "resolver policy regex")
		if strings.Contains(l, "Local Domain Fallback:") {
			t.Errorf("blames Local Domain Fallback without a matching entry: %s", l)
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{{}, {"api.platform"}, {"api", "stg"}, {"api.platform", "stg=not-an-ip"}, {"-s", "10.96.0.0", "api.platform", "stg"}} {
			w.check(t, 2, nil, args...)
		}
	})
}

// TestShellcheck lints the script where shellcheck is installed.
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed")
	}
	if out, err := exec.Command(sc, repoFile(t, "tools", "warp-check.sh")).CombinedOutput(); err != nil {
		t.Errorf("shellcheck tools/warp-check.sh: %v\n%s", err, out)
	}
}
