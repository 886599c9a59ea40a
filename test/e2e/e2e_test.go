// Package e2e proves the whole WARP path on one machine, as a developer on a
// laptop lives it: `curl http://stg-api.platform.svc.cluster.local:8080/`
// from the laptop reaches a pod of the stg cluster and the prd- name reaches
// prd, with nothing but DNS and routing in between.
//
// Network namespaces stand in for the laptop, for Cloudflare Gateway with its
// resolver policies and tunnels (our coredns with upstream's view and forward
// plugins, routing between the laptop and the clusters' VPCs), and for two
// clusters, each with a real etcd + kube-apiserver, our coredns running the
// production Corefile.example (envalias stg or prd) on its CoreDNS pod's IP,
// a kube-dns-nlb stand-in on a static IP, and HTTP servers on the pod IPs of
// Service api in namespace platform. See topology_test.go for the addresses.
// The laptop's resolver is a WARP client stand-in (warp_test.go) that keeps
// names under its Local Domain Fallback list on the laptop, as the client
// does, with the list our Terraform device-profile module writes.
//
// It needs root and `ip netns`, and runs only when asked: `make e2e`
// (WARPDNS_E2E=1). It prints a table of its checks; without root or ip
// netns it says why and skips.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/warpdns/warpdns/test/cluster"
	"github.com/warpdns/warpdns/test/e2e/gateway"
	"github.com/warpdns/warpdns/test/e2e/ldf"
)

const (
	namespace = "platform"
	podPort   = 8080 // the api Service's targetPort: what SRV answers
	// margin is what the scale-down bound allows beyond TTL and cache: the
	// informer's delay and one polling interval.
	margin = 5 * time.Second
)

// fqdn is the name a developer types for Service api in env's cluster.
func fqdn(env string) string { return env + "-api." + namespace + ".svc.cluster.local." }

// world is everything one run starts.
type world struct {
	t    *testing.T
	tp   *topology
	root string // the repository
	dir  string // builds, Corefiles, logs
	bin  string // our coredns

	example      string        // Corefile.example
	ttl          time.Duration // the kubernetes plugin's ttl in it
	clusterCache time.Duration // its cache time for the cluster zone

	envs map[string]*clusterEnv

	// profile is the device profile our Terraform module writes: its Local
	// Domain Fallback list and Split Tunnels (warp_test.go).
	profile *ldf.Profile
	// account is the Cloudflare side our Terraform makes, Gateway's
	// policies included (access_test.go).
	account *account
}

// clusterEnv is one running cluster.
type clusterEnv struct {
	*clusterNet
	cp    *cluster.Cluster
	dns   *cluster.CoreDNS
	svc   *corev1.Service
	eps   []cluster.Endpoint
	ready []string // the pods the answers should hold now
}

func TestE2E(t *testing.T) {
	if os.Getenv("WARPDNS_E2E") == "" {
		t.Skip("the end-to-end test runs with `make e2e` (WARPDNS_E2E=1): it needs root and ip netns, and takes a minute or two")
	}
	r := &report{}
	t.Cleanup(func() { r.print(os.Stdout) })
	if reason := prerequisites(); reason != "" {
		r.skipped = reason
		t.Skip(reason)
	}
	w := &world{t: t, tp: newTopology(), envs: map[string]*clusterEnv{}}
	if !r.check(t, "set up: namespaces, 2 control planes, 2 cluster CoreDNS, LBs, pods, gateway (policies from the Terraform), 2 laptops' WARP DNS proxies", func() (string, error) {
		return w.setUp(r)
	}) {
		r.notes = append(r.notes, "the checks after set-up did not run")
		t.FailNow()
	}
	stg, prd := w.envs["stg"], w.envs["prd"]

	r.check(t, "WARP Split Tunnels of modules/device-profile (the organisation's: Cloudflare's default): pods and the Internet through WARP, local networks not", w.splitTunnels)
	r.check(t, "WARP Local Domain Fallback, the list of manifests/cloudflare/modules/device-profile: stg-api goes to Gateway", w.ldfOurs)
	r.check(t, "WARP Local Domain Fallback, Cloudflare's default list: stg-api stays on the laptop -> NXDOMAIN (why: warp-check)", w.ldfDefault)
	for _, c := range []*clusterEnv{stg, prd} {
		r.check(t, fmt.Sprintf("laptop: dig %s -> %s pod IPs", strings.TrimSuffix(fqdn(c.env), "."), c.env), func() (string, error) {
			return w.digPods(c)
		})
	}
	for _, c := range []*clusterEnv{stg, prd} {
		r.check(t, fmt.Sprintf("laptop: curl http://%s:%d/ reaches a %s pod", strings.TrimSuffix(fqdn(c.env), "."), podPort, c.env), func() (string, error) {
			return w.curlPods(c, c.pods)
		})
	}
	r.check(t, "laptop: the ClusterIP is not routable (why the VPC path answers pod IPs)", func() (string, error) {
		url := fmt.Sprintf("http://%s:80/", stg.svc.Spec.ClusterIP)
		f, err := curl(w.tp.laptop, url)
		if err == nil {
			return "", fmt.Errorf("curl %s reached %s: %q", url, f.RemoteIP, f.Body)
		}
		route := ip("-n", w.tp.laptop, "route", "get", stg.svc.Spec.ClusterIP)
		if route == nil {
			return "", fmt.Errorf("the laptop has a route to %s", stg.svc.Spec.ClusterIP)
		}
		return fmt.Sprintf("stg ClusterIP %s: %s; route get: %s", stg.svc.Spec.ClusterIP,
			fromLast(err.Error(), "curl: "), fromLast(route.Error(), ": ")), nil
	})
	for _, c := range []*clusterEnv{stg, prd} {
		r.check(t, fmt.Sprintf("laptop: SRV _http._tcp.%s-api -> port %d, targets resolve to %s again", c.env, podPort, c.env), func() (string, error) {
			return w.srv(c)
		})
	}
	r.check(t, "in-cluster listener :53 unchanged: api and ENV-api -> ClusterIP (stg, prd)", func() (string, error) {
		var details []string
		for _, c := range []*clusterEnv{stg, prd} {
			d, err := w.inCluster(c)
			if err != nil {
				return "", err
			}
			details = append(details, d)
		}
		return strings.Join(details, "; "), nil
	})

	for _, u := range []struct{ ns, ip, what string }{
		{w.tp.laptop2, laptop2IP, "stg-only user (laptop2)"},
		{w.tp.laptop, laptopIP, "on-call user (laptop)"},
	} {
		r.check(t, fmt.Sprintf("access, %s, %s: stg %s, prd %s", u.what, who(u.ip), w.account.describe("stg", u.ip), w.account.describe("prd", u.ip)), func() (string, error) {
			return w.accessMatrix(u.ns, u.ip)
		})
	}

	// Scale api in stg down by one: its last pod terminates, then goes.
	victim := stg.pods[len(stg.pods)-1]
	if r.check(t, fmt.Sprintf("scale down: a terminating pod leaves the laptop's answers within ttl %s + cache %s", w.ttl, w.clusterCache), func() (string, error) {
		return w.scaleDown(stg, victim)
	}) {
		r.check(t, "scale down: no answer or fetch returns the terminating or deleted pod afterwards", func() (string, error) {
			return w.neverAgain(stg, victim)
		})
	} else {
		r.notes = append(r.notes, "not run: the checks that the pod never returns (the scale-down check failed)")
	}

	r.check(t, "failure: unknown env prefix dev-api -> NXDOMAIN from the gateway", func() (string, error) {
		if _, err := ask(w.tp.laptop, "dev-api."+namespace+".svc.cluster.local. A", "NXDOMAIN"); err != nil {
			return "", err
		}
		return "dig dev-api: NXDOMAIN (no resolver policy matches dev-)", nil
	})
	r.check(t, "failure: a non-cluster name sent to the stg VPC listener -> REFUSED, no recursion", func() (string, error) {
		var details []string
		for _, proto := range []string{"+notcp", "+tcp"} {
			rep, err := ask(w.tp.laptop, "@"+stg.lb+" "+proto+" example.org. A", "REFUSED")
			if err != nil {
				return "", err
			}
			if strings.Contains(" "+rep.Flags+" ", " ra ") {
				return "", fmt.Errorf("REFUSED but recursion available (flags %q)", rep.Flags)
			}
			details = append(details, fmt.Sprintf("%s: REFUSED, flags %q", strings.TrimPrefix(proto, "+"), rep.Flags))
		}
		return fmt.Sprintf("dig @%s example.org: %s", stg.lb, strings.Join(details, "; ")), nil
	})
	if r.check(t, "failure: prd CoreDNS down -> SERVFAIL for prd-api from the gateway, stg unaffected", func() (string, error) {
		return w.prdDown(stg, prd)
	}) {
		r.check(t, "recovery: prd CoreDNS back -> prd-api answers again", func() (string, error) {
			return w.prdBack(prd)
		})
	} else {
		r.notes = append(r.notes, "not run: the recovery check (the prd-down check failed)")
	}
}

// prerequisites says why the test cannot run here, or "".
func prerequisites() string {
	if runtime.GOOS != "linux" {
		return "network namespaces need Linux, this is " + runtime.GOOS
	}
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Sprintf("not root (uid %d): creating network namespaces takes root", uid)
	}
	for tool, pkg := range map[string]string{"ip": "iproute2", "dig": "dnsutils", "curl": "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("%s not found (apt-get install %s)", tool, pkg)
		}
	}
	probe := fmt.Sprintf("%s%d-probe", prefix, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		return fmt.Sprintf("ip netns add does not work here: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := removeNamespace(probe); err != nil {
		return fmt.Sprintf("ip netns del does not work here: %v", err)
	}
	return ""
}

// setUp builds the world and registers its tear-down, which runs (and is
// checked) even when a later step fails.
func (w *world) setUp(r *report) (string, error) {
	t := w.t
	start := time.Now()
	var steps []string
	step := func(what string) {
		steps = append(steps, fmt.Sprintf("%s %.0fs", what, time.Since(start).Seconds()))
		start = time.Now()
	}
	removed, err := removeLeftovers()
	if len(removed) > 0 {
		t.Logf("removed leftovers of an earlier run: %v", removed)
	}
	if err != nil {
		return "", fmt.Errorf("removing leftovers of an earlier run: %w", err)
	}
	if w.dir, err = os.MkdirTemp("", "warpdns-e2e-"); err != nil {
		return "", err
	}
	// Registered before anything is created, so it runs after every
	// process below has been stopped (cleanups run last-in first-out).
	t.Cleanup(func() { w.tearDown(r) })
	w.handleSignals()

	if w.root, err = cluster.RepoRoot(); err != nil {
		return "", err
	}
	if w.example, err = cluster.Example(); err != nil {
		return "", err
	}
	if w.ttl, w.clusterCache, err = ttlAndCache(w.example); err != nil {
		return "", err
	}

	// The Terraform first: the laptops' routes are the device profile's
	// Split Tunnels, the gateway's rules the account's policies.
	if w.account, err = labAccount(w.root, w.tp); err != nil {
		return "", fmt.Errorf("the lab's Cloudflare account from the Terraform: %w", err)
	}
	r.notes = append(r.notes, w.account.notes...)
	if w.profile, err = labProfile(w.root, w.account.envs); err != nil {
		return "", fmt.Errorf("the device profile: %w", err)
	}
	if w.profile.Split == nil {
		return "", errors.New("the device profile's Split Tunnels are unknown for the lab's inputs")
	}
	if err := w.tp.create(); err != nil {
		return "", err
	}
	for laptop, gw := range map[string]string{w.tp.laptop: gatewayIP, w.tp.laptop2: gateway2IP} {
		if err := routeWARP(laptop, gw, w.profile.Split); err != nil {
			return "", fmt.Errorf("%s's WARP routes: %w", laptop, err)
		}
	}
	rules, err := w.account.networkRules(w.tp.gateway)
	if err != nil {
		return "", fmt.Errorf("the gateway's network policies: %w", err)
	}
	for _, rule := range rules {
		if err := ip(rule...); err != nil {
			return "", fmt.Errorf("the gateway's network policies: %w", err)
		}
	}
	step("namespaces")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if w.bin, err = cluster.BuildOurCoreDNS(ctx, w.dir); err != nil {
		return "", err
	}
	step("build")

	for _, net := range w.tp.clusters() {
		w.envs[net.env] = &clusterEnv{clusterNet: net}
	}
	// Both control planes at once: each takes a few seconds.
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, env := range []string{"stg", "prd"} {
		wg.Go(func() { errs[i] = w.startControlPlane(ctx, w.envs[env]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	step("control planes")

	for _, c := range []*clusterEnv{w.envs["stg"], w.envs["prd"]} {
		if err := w.seed(ctx, c); err != nil {
			return "", err
		}
		if err := w.startStandin(c); err != nil {
			return "", err
		}
		if err := w.startClusterDNS(ctx, c); err != nil {
			return "", err
		}
		// The load balancer relays to CoreDNS' VPC listener.
		if _, err := eventually(20*time.Second, cluster.DNSAnswersIn(c.ns, hostport(c.lb, 53))); err != nil {
			return "", fmt.Errorf("%s kube-dns-nlb %s:53: %w", c.env, c.lb, err)
		}
	}
	step("pods, LBs, cluster CoreDNS")

	gwCorefile, err := w.account.gatewayCorefile()
	if err != nil {
		return "", fmt.Errorf("gateway: %w", err)
	}
	gw, err := cluster.StartCoreDNSIn(ctx, w.tp.gateway, w.bin, gwCorefile, w.dir,
		cluster.DNSAnswersIn(w.tp.gateway, hostport(gatewayIP, 53)))
	if err != nil {
		return "", fmt.Errorf("gateway: %w", err)
	}
	t.Cleanup(func() { gw.Stop() })
	step("gateway")

	warp, err := cluster.StartCoreDNSIn(ctx, w.tp.laptop, w.bin, laptopCorefile(w.profile), w.dir, cluster.AllReady(
		cluster.DNSAnswersIn(w.tp.laptop, hostport(warpProxyIP, 53)),
		cluster.DNSAnswersIn(w.tp.laptop, hostport(warpDefaultProxyIP, 53)),
		cluster.DNSAnswersIn(w.tp.laptop, hostport(routerIP, 53))))
	if err != nil {
		return "", fmt.Errorf("laptop WARP client and home router: %w", err)
	}
	t.Cleanup(func() { warp.Stop() })
	warp2, err := cluster.StartCoreDNSIn(ctx, w.tp.laptop2, w.bin, laptop2Corefile(w.profile), w.dir,
		cluster.DNSAnswersIn(w.tp.laptop2, hostport(warpProxyIP, 53)))
	if err != nil {
		return "", fmt.Errorf("laptop2 WARP client: %w", err)
	}
	t.Cleanup(func() { warp2.Stop() })
	step("laptops' WARP DNS proxies")
	steps = append(steps, fmt.Sprintf("gateway: %d network rules, %d DNS and %d resolver policies (%d of the organisation's)",
		len(rules), len(w.account.gw.Policies(gateway.DNSFilter)), len(w.account.gw.Policies(gateway.ResolverFilter)), w.account.org))
	return strings.Join(steps, ", "), nil
}

func (w *world) startControlPlane(ctx context.Context, c *clusterEnv) error {
	cp, err := cluster.Start(ctx, cluster.Options{
		Dir:   filepath.Join(w.dir, c.env+"-control-plane"),
		Netns: c.ns,
		Logf:  func(format string, args ...any) { w.t.Logf(c.env+": "+format, args...) },
	})
	if err != nil {
		return fmt.Errorf("%s control plane: %w", c.env, err)
	}
	c.cp = cp
	w.t.Cleanup(func() { cp.Stop() })
	return nil
}

// seed creates ClusterIP Service api (port 80 -> targetPort 8080) in
// namespace platform with one ready endpoint per pod IP.
func (w *world) seed(ctx context.Context, c *clusterEnv) error {
	if err := c.cp.EnsureNamespace(ctx, namespace); err != nil {
		return err
	}
	svc, err := c.cp.CreateService(ctx, cluster.ClusterIPService(namespace, "api", corev1.ServicePort{
		Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(podPort),
	}))
	if err != nil {
		return fmt.Errorf("%s: %w", c.env, err)
	}
	c.svc = svc
	for i, ip := range c.pods {
		c.eps = append(c.eps, cluster.Endpoint{IP: ip, Pod: fmt.Sprintf("api-%s-%d", c.env, i), NodeName: fmt.Sprintf("%s-node-%d", c.env, i)})
	}
	c.ready = slices.Clone(c.pods)
	return c.cp.SetEndpoints(ctx, svc, c.eps, nil)
}

// startClusterDNS runs Corefile.example for env, listening where a CoreDNS
// pod would: its pod IP, :53 in-cluster and :5353 VPC-facing. forward goes
// to a port where nothing listens inside the namespace: no query leaves it.
func (w *world) startClusterDNS(ctx context.Context, c *clusterEnv) error {
	const line = "\n    envalias stg\n"
	if strings.Count(w.example, line) != 1 {
		return fmt.Errorf("want exactly one line %q in Corefile.example", strings.TrimSpace(line))
	}
	corefile, err := cluster.RenderLocal(strings.Replace(w.example, line, "\n    envalias "+c.env+"\n", 1), cluster.LocalCorefile{
		InClusterPort: 53, VPCPort: 5353, HealthPort: 8080, ReadyPort: 8181, MetricsPort: 9153,
		Kubeconfig: c.cp.Kubeconfig, Upstream: cluster.NoUpstream, Bind: []string{c.coreDNS},
	})
	if err != nil {
		return err
	}
	d, err := cluster.StartCoreDNSIn(ctx, c.ns, w.bin, corefile, w.dir, cluster.AllReady(
		cluster.HTTPReadyIn(c.ns, "http://127.0.0.1:8181/ready"),
		cluster.DNSAnswersIn(c.ns, hostport(c.coreDNS, 53)),
		cluster.DNSAnswersIn(c.ns, hostport(c.coreDNS, 5353))))
	if err != nil {
		return fmt.Errorf("%s coredns: %w", c.env, err)
	}
	c.dns = d
	w.t.Cleanup(func() { d.Stop() })
	return nil
}

// ttlAndCache reads the kubernetes plugin's ttl from Corefile.example, and
// the cache time of the cluster zone (0 when the cache is disabled for it).
func ttlAndCache(corefile string) (ttl, cache time.Duration, err error) {
	m := regexp.MustCompile(`(?m)^\s+ttl (\d+)\s*$`).FindAllStringSubmatch(corefile, -1)
	if len(m) != 1 {
		return 0, 0, fmt.Errorf("want one kubernetes ttl line in Corefile.example, found %d", len(m))
	}
	ttl, _ = time.ParseDuration(m[0][1] + "s")
	c := regexp.MustCompile(`(?m)^\s+cache (\d+)`).FindStringSubmatch(corefile)
	if c != nil && !strings.Contains(corefile, "disable success cluster.local") {
		cache, _ = time.ParseDuration(c[1] + "s")
	}
	return ttl, cache, nil
}

// handleSignals removes the namespaces if the run is interrupted (Ctrl-C on
// make e2e): cleanups do not run then. The processes die with the test
// process (Pdeathsig) or are ended inside their namespace.
func (w *world) handleSignals() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "e2e: %v: removing namespaces %v and %s\n", s, w.tp.namespaces(), w.dir)
			_ = w.tp.remove()
			os.RemoveAll(w.dir)
			os.Exit(1)
		case <-done:
		}
	}()
	w.t.Cleanup(func() { signal.Stop(sigs); close(done) })
}

// tearDown removes the namespaces and checks that nothing is left: no
// namespace, /etc/netns entry or process of this run, and the host's links
// and routes as they were. The working directory (logs) is kept when the
// test failed.
func (w *world) tearDown(r *report) {
	r.check(w.t, "tear down: no namespace, process or file left; host links and routes unchanged", func() (string, error) {
		err := w.tp.remove()
		if left := w.tp.leftovers(); len(left) > 0 {
			err = errors.Join(err, fmt.Errorf("left behind: %s", strings.Join(left, "; ")))
		}
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("removed %s", strings.Join(w.tp.namespaces(), " ")), nil
	})
	if w.t.Failed() {
		fmt.Fprintf(os.Stderr, "e2e: logs kept in %s\n", w.dir)
		return
	}
	os.RemoveAll(w.dir)
}

// --- checks --------------------------------------------------------------

func (w *world) digPods(c *clusterEnv) (string, error) {
	name := fqdn(c.env)
	var rep *reply
	_, err := eventually(15*time.Second, func() (err error) {
		if rep, err = ask(w.tp.laptop, name+" A", "NOERROR", c.pods...); err != nil {
			return err
		}
		for _, rr := range rep.Answer {
			if rr.Header().Name != name {
				return fmt.Errorf("owner name %s, want %s only", rr.Header().Name, name)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("A %s (owner name as asked)", strings.Join(addrs(rep.Answer), " ")), nil
}

// curlPods fetches the name a few times (loadbalance shuffles the answer)
// and checks that every fetch reached one of want and says the cluster.
func (w *world) curlPods(c *clusterEnv, want []string) (string, error) {
	url := fmt.Sprintf("http://%s:%d/", strings.TrimSuffix(fqdn(c.env), "."), podPort)
	reached := map[string]bool{}
	var body string
	for range 6 {
		f, err := curl(w.tp.laptop, url)
		if err != nil {
			return "", err
		}
		if !slices.Contains(want, f.RemoteIP) {
			return "", fmt.Errorf("reached %s, want one of %v", f.RemoteIP, want)
		}
		if wantBody := fmt.Sprintf("hello from pod %s of Service api in cluster %s", f.RemoteIP, c.env); f.Body != wantBody {
			return "", fmt.Errorf("body %q, want %q", f.Body, wantBody)
		}
		reached[f.RemoteIP], body = true, f.Body
	}
	return fmt.Sprintf("%q (6 fetches reached %s)", body, strings.Join(slices.Sorted(maps.Keys(reached)), " ")), nil
}

// srv checks the SRV answer for the http port and resolves every target
// again from the laptop: through the gateway to the same cluster.
func (w *world) srv(c *clusterEnv) (string, error) {
	rep, err := dig(w.tp.laptop, "_http._tcp."+fqdn(c.env)+" SRV")
	if err != nil {
		return "", err
	}
	if rep.Rcode != "NOERROR" || len(rep.Answer) != len(c.pods) {
		return "", fmt.Errorf("want NOERROR with %d SRV records, got %s\n%s", len(c.pods), rep.Rcode, rep.Text)
	}
	var got []string
	var first string
	for _, rr := range rep.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok {
			return "", fmt.Errorf("not SRV: %v", rr)
		}
		if srv.Port != podPort {
			return "", fmt.Errorf("port %d, want the targetPort %d: %v", srv.Port, podPort, srv)
		}
		label, parent, _ := strings.Cut(srv.Target, ".")
		if parent != fqdn(c.env) {
			return "", fmt.Errorf("target %s is not below %s", srv.Target, fqdn(c.env))
		}
		ip := strings.ReplaceAll(label, "-", ".")
		if !slices.Contains(c.pods, ip) {
			return "", fmt.Errorf("target %s is not a %s pod", srv.Target, c.env)
		}
		if _, err := ask(w.tp.laptop, srv.Target+" A", "NOERROR", ip); err != nil {
			return "", fmt.Errorf("target %s through the gateway: %w", srv.Target, err)
		}
		got = append(got, ip)
		if first == "" {
			first = fmt.Sprintf("%d %s -> %s", srv.Port, srv.Target, ip)
		}
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(c.pods)); !slices.Equal(got, want) {
		return "", fmt.Errorf("targets %v, want %v", got, want)
	}
	return fmt.Sprintf("%d targets, e.g. %s; additional: %s", len(got), first, strings.Join(addrs(rep.Additional), " ")), nil
}

// inCluster asks the in-cluster listener from inside the cluster (where a
// pod would ask the kube-dns Service) and, for contrast, the VPC listener.
func (w *world) inCluster(c *clusterEnv) (string, error) {
	for _, name := range []string{"api." + namespace + ".svc.cluster.local.", fqdn(c.env)} {
		if _, err := ask(c.ns, "@"+c.coreDNS+" -p 53 "+name+" A", "NOERROR", c.svc.Spec.ClusterIP); err != nil {
			return "", fmt.Errorf("%s in-cluster %s: %w", c.env, name, err)
		}
	}
	if _, err := ask(c.ns, "@"+c.coreDNS+" -p 5353 api."+namespace+".svc.cluster.local. A", "NOERROR", c.pods...); err != nil {
		return "", fmt.Errorf("%s VPC listener: %w", c.env, err)
	}
	return fmt.Sprintf("%s: ClusterIP %s (VPC :5353: %d pods)", c.env, c.svc.Spec.ClusterIP, len(c.pods)), nil
}

func without(list []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == drop })
}

// setVictim rewrites api's EndpointSlices with victim terminating, or gone.
func (w *world) setVictim(c *clusterEnv, victim string, gone bool) error {
	var eps []cluster.Endpoint
	for _, ep := range c.eps {
		if ep.IP == victim {
			if gone {
				continue
			}
			ep.Terminating = true
		}
		eps = append(eps, ep)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.cp.SetEndpoints(ctx, c.svc, eps, nil); err != nil {
		return err
	}
	c.ready = without(c.pods, victim)
	return nil
}

// scaleDown marks victim terminating (the endpointslice controller's
// ready=false, serving=true, terminating=true) and measures how long each way
// of asking keeps answering it: the VPC listener directly (the informer's
// delay), and the laptop through the gateway, whose cache may hold an answer
// for up to its TTL.
func (w *world) scaleDown(c *clusterEnv, victim string) (string, error) {
	remaining := without(c.pods, victim)
	srvName := "_http._tcp." + fqdn(c.env)
	dashed := strings.ReplaceAll(victim, ".", "-")
	hasRemaining := func(r *reply) error { return r.want("NOERROR", remaining...) }
	srvRemaining := func(r *reply) error {
		var targets []string
		for _, rr := range r.Answer {
			if srv, ok := rr.(*dns.SRV); ok {
				label, _, _ := strings.Cut(srv.Target, ".")
				targets = append(targets, strings.ReplaceAll(label, "-", "."))
			}
		}
		slices.Sort(targets)
		if r.Rcode != "NOERROR" || !slices.Equal(targets, remaining) || slices.Contains(addrs(r.Additional), victim) {
			return fmt.Errorf("got %s, targets %v, additional %v; want NOERROR, %v", r.Rcode, targets, addrs(r.Additional), remaining)
		}
		return nil
	}
	nxdomain := func(r *reply) error { return r.want("NXDOMAIN") }
	probes := []struct {
		what, query string
		gone        func(*reply) error
	}{
		{"VPC listener A", "@" + c.lb + " " + fqdn(c.env) + " A", hasRemaining},
		{"VPC listener SRV", "@" + c.lb + " " + srvName + " SRV", srvRemaining},
		{"laptop A", fqdn(c.env) + " A", hasRemaining},
		{"laptop SRV", srvName + " SRV", srvRemaining},
		{"laptop " + dashed, dashed + "." + fqdn(c.env) + " A", nxdomain},
	}
	// The laptop asks every question first, so that the gateway holds
	// answers with the victim in its cache: the worst case the bound is
	// about.
	for _, p := range probes {
		rep, err := dig(w.tp.laptop, p.query)
		if err != nil {
			return "", err
		}
		if !strings.Contains(rep.Text, victim) && !strings.Contains(rep.Text, dashed) {
			return "", fmt.Errorf("before the scale-down, %s does not answer %s:\n%s", p.what, victim, rep.Text)
		}
	}
	if err := w.setVictim(c, victim, false); err != nil {
		return "", err
	}
	marked := time.Now()
	bound := w.ttl + w.clusterCache + margin
	gone := make([]time.Duration, len(probes))
	if _, err := eventually(bound, func() error {
		var still []error
		for i, p := range probes {
			if gone[i] != 0 {
				continue
			}
			rep, err := dig(w.tp.laptop, p.query)
			if err != nil {
				return err
			}
			if err := p.gone(rep); err != nil {
				still = append(still, fmt.Errorf("%s: %w", p.what, err))
				continue
			}
			gone[i] = time.Since(marked)
		}
		return errors.Join(still...)
	}); err != nil {
		return "", fmt.Errorf("%s still answered %.0fs after it began terminating: %w", victim, time.Since(marked).Seconds(), err)
	}
	var parts []string
	for i, p := range probes {
		parts = append(parts, fmt.Sprintf("%s %.1fs", p.what, gone[i].Seconds()))
	}
	return fmt.Sprintf("%s terminating, gone from: %s (bound: ttl %s + cache %s + margin %s)",
		victim, strings.Join(parts, ", "), w.ttl, w.clusterCache, margin), nil
}

// neverAgain asks, over and over, every way a client can ask, and fetches:
// the victim must not come back while it is terminating, nor once deleted.
func (w *world) neverAgain(c *clusterEnv, victim string) (string, error) {
	dashed := strings.ReplaceAll(victim, ".", "-")
	var asked []int
	for _, phase := range []string{"while terminating", "after deletion"} {
		if phase == "after deletion" {
			// The pod is gone: its endpoint leaves the slice.
			if err := w.setVictim(c, victim, true); err != nil {
				return "", err
			}
		}
		n := 0
		for range 15 {
			for _, q := range []string{
				fqdn(c.env) + " A",                                 // laptop, via the gateway
				"_http._tcp." + fqdn(c.env) + " SRV",               // SRV, via the gateway
				"@" + c.lb + " " + fqdn(c.env) + " A",              // the VPC listener directly
				"@" + c.lb + " _http._tcp." + fqdn(c.env) + " SRV", // and its SRV
			} {
				rep, err := dig(w.tp.laptop, q)
				if err != nil {
					return "", fmt.Errorf("%s: %w", phase, err)
				}
				n++
				if rep.Rcode != "NOERROR" || strings.Contains(rep.Text, victim) || strings.Contains(rep.Text, dashed) {
					return "", fmt.Errorf("%s: dig %s: the terminated pod %s is back (or %s)\n%s", phase, q, victim, rep.Rcode, rep.Text)
				}
			}
		}
		if _, err := w.curlPods(c, without(c.pods, victim)); err != nil {
			return "", fmt.Errorf("%s: %w", phase, err)
		}
		asked = append(asked, n)
	}
	return fmt.Sprintf("%d answers and 6 fetches while terminating, %d and 6 after deletion: none with %s", asked[0], asked[1], victim), nil
}

// prdDown stops prd's CoreDNS. The gateway may answer prd-api from its cache
// until the TTL runs out; then SERVFAIL. stg keeps answering.
func (w *world) prdDown(stg, prd *clusterEnv) (string, error) {
	if err := prd.dns.Stop(); err != nil {
		return "", err
	}
	cached := 0
	var last *reply
	took, err := eventually(w.ttl+15*time.Second, func() (err error) {
		if last, err = dig(w.tp.laptop, fqdn(prd.env)+" A"); err != nil {
			return err
		}
		switch last.Rcode {
		case "SERVFAIL":
			return nil
		case "NOERROR":
			if err := last.want("NOERROR", prd.pods...); err != nil {
				return fmt.Errorf("while prd is down: %w", err)
			}
			cached++
			return errors.New("still answered from the gateway's cache")
		}
		return fmt.Errorf("got %s, want SERVFAIL", last.Rcode)
	})
	if err != nil {
		return "", fmt.Errorf("prd-api: %w", err)
	}
	rep, err := ask(w.tp.laptop, fqdn(stg.env)+" A", "NOERROR", stg.ready...)
	if err != nil {
		return "", fmt.Errorf("stg-api while prd is down: %w", err)
	}
	if _, err := w.curlPods(stg, stg.ready); err != nil {
		return "", fmt.Errorf("stg while prd is down: %w", err)
	}
	return fmt.Sprintf("prd-api: SERVFAIL %.1fs after the stop (%d cached answers before, last query took %.1fs); stg-api: %s, curl reaches stg",
		took.Seconds(), cached, last.Took.Seconds(), strings.Join(addrs(rep.Answer), " ")), nil
}

func (w *world) prdBack(prd *clusterEnv) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.startClusterDNS(ctx, prd); err != nil {
		return "", err
	}
	// The gateway caches SERVFAIL for a few seconds.
	took, err := eventually(30*time.Second, func() error {
		_, err := ask(w.tp.laptop, fqdn(prd.env)+" A", "NOERROR", prd.pods...)
		return err
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("prd-api answers %s %.1fs after CoreDNS was ready again", strings.Join(prd.pods, " "), took.Seconds()), nil
}

// fromLast is what follows the last sep in s (all of s without one).
func fromLast(s, sep string) string {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[i+len(sep):]
	}
	return s
}
