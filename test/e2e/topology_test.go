package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The network, all of it inside namespaces this test creates (no interface,
// route or file of the host's own is touched, and no namespace has a route
// out):
//
//	laptop 10.200.0.2 ---- 10.200.0.1 gateway 10.200.1.1 ---- 10.200.1.2 stg
//	  resolv.conf: 127.0.2.2     |    (resolver policies,      lo: 10.201.0.53 CoreDNS pod
//	  routes: WARP's Split       |     ip_forward)                 10.201.0.11-13 api pods
//	  Tunnels (routeWARP):       |                                 10.201.255.53 kube-dns-nlb
//	  default via the gateway,   |                                 127.0.0.1 etcd, kube-apiserver
//	  the excluded ranges        +-- 10.200.2.1 ---- 10.200.2.2 prd
//	  unreachable                                              lo: 10.202.0.53, 10.202.0.11-12,
//	                                                               10.202.255.53, 127.0.0.1
//
//	laptop2 10.200.3.2 --- 10.200.3.1 gateway   (a second user, another identity)
//
// 10.201.0.0/16 and 10.202.0.0/16 are the clusters' VPCs (one Cloudflare
// virtual network each); the Services' ClusterIPs (10.96.0.0/16 in both) are
// routed nowhere, as in a real VPC.
//
// The laptop's resolver is the WARP client's DNS proxy stand-in (127.0.2.2,
// warp_test.go): names under its Local Domain Fallback list go to the
// laptop's own resolver, the home router stand-in on 192.168.1.1 (lo), the
// rest to the gateway.

// prefix starts the name of every namespace and file this test creates; the
// next part is the pid of the test process, so that a leftover of a run that
// was killed can be told from a run still going.
const prefix = "wdns-e2e-"

const (
	laptopIP  = "10.200.0.2"
	gatewayIP = "10.200.0.1" // Cloudflare Gateway, where WARP sends DNS
	// The second laptop and the gateway's address on its link.
	laptop2IP  = "10.200.3.2"
	gateway2IP = "10.200.3.1"
	// The WARP client's DNS proxy with the device profile our Terraform
	// module writes (the laptop's resolv.conf), and one with Cloudflare's
	// default fallback list, to show what that list does.
	warpProxyIP        = "127.0.2.2"
	warpDefaultProxyIP = "127.0.3.2"
	// The resolver the laptop had before WARP: its home router.
	routerIP = "192.168.1.1"
)

// clusterNet is one cluster's namespace and addresses.
type clusterNet struct {
	env       string // stg, prd: the envalias ENV and the name prefix
	ns        string
	index     int    // 1, 2: its link is 10.200.index.0/24
	vpc       string // 10.20index.0.0/16
	coreDNS   string // the CoreDNS pod's IP; listeners :53 and :5353
	lb        string // kube-dns-nlb's static IP; :53 relays to coreDNS:5353
	pods      []string
	gwSide    string // the gateway's address on the link
	clusterGW string // the cluster's address on the link
}

func newClusterNet(run, env string, index, pods int) *clusterNet {
	c := &clusterNet{
		env: env, ns: run + env, index: index,
		vpc:       fmt.Sprintf("10.20%d.0.0/16", index),
		coreDNS:   fmt.Sprintf("10.20%d.0.53", index),
		lb:        fmt.Sprintf("10.20%d.255.53", index),
		gwSide:    fmt.Sprintf("10.200.%d.1", index),
		clusterGW: fmt.Sprintf("10.200.%d.2", index),
	}
	for i := range pods {
		c.pods = append(c.pods, fmt.Sprintf("10.20%d.0.%d", index, 11+i))
	}
	return c
}

// topology is the set of namespaces of one run.
type topology struct {
	run      string // prefix + pid + "-"
	laptop   string
	laptop2  string
	gateway  string
	stg, prd *clusterNet
	host     string // the host's links and routes before, to compare after

	mu sync.Mutex // remove runs from a cleanup or the signal handler
}

func newTopology() *topology {
	run := fmt.Sprintf("%s%d-", prefix, os.Getpid())
	return &topology{
		run:     run,
		laptop:  run + "laptop",
		laptop2: run + "laptop2",
		gateway: run + "gw",
		stg:     newClusterNet(run, "stg", 1, 3),
		prd:     newClusterNet(run, "prd", 2, 2),
	}
}

func (tp *topology) namespaces() []string {
	return []string{tp.laptop, tp.laptop2, tp.gateway, tp.stg.ns, tp.prd.ns}
}

func (tp *topology) clusters() []*clusterNet { return []*clusterNet{tp.stg, tp.prd} }

// etcNetns is the directory whose files `ip netns exec` bind-mounts over
// /etc for processes in that namespace: the laptop's resolv.conf lives here.
func etcNetns(ns string) string { return filepath.Join("/etc/netns", ns) }

// ip runs the ip command (iproute2) and returns its error with its output.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// create builds the namespaces, links, addresses and routes. On error the
// caller still calls remove.
func (tp *topology) create() error {
	var err error
	if tp.host, err = hostNetwork(); err != nil {
		return err
	}
	add := func(args ...string) { // one ip command, until one fails
		if err == nil {
			err = ip(args...)
		}
	}
	for _, ns := range tp.namespaces() {
		add("netns", "add", ns)
		add("-n", ns, "link", "set", "lo", "up")
	}
	// laptops <-> gateway. Each veth pair is created directly between two
	// of our namespaces, never in the host's.
	for _, l := range []struct{ ns, link, ip, gw string }{
		{tp.laptop, "to-laptop", laptopIP, gatewayIP},
		{tp.laptop2, "to-laptop2", laptop2IP, gateway2IP},
	} {
		add("link", "add", l.link, "netns", tp.gateway, "type", "veth", "peer", "name", "to-gw", "netns", l.ns)
		add("-n", tp.gateway, "addr", "add", l.gw+"/24", "dev", l.link)
		add("-n", tp.gateway, "link", "set", l.link, "up")
		add("-n", l.ns, "addr", "add", l.ip+"/24", "dev", "to-gw")
		add("-n", l.ns, "link", "set", "to-gw", "up")
		add("-n", l.ns, "addr", "add", routerIP+"/32", "dev", "lo")
	}
	for _, c := range tp.clusters() {
		link := "to-" + c.env
		add("link", "add", link, "netns", tp.gateway, "type", "veth", "peer", "name", "to-gw", "netns", c.ns)
		add("-n", tp.gateway, "addr", "add", c.gwSide+"/24", "dev", link)
		add("-n", tp.gateway, "link", "set", link, "up")
		add("-n", c.ns, "addr", "add", c.clusterGW+"/24", "dev", "to-gw")
		add("-n", c.ns, "link", "set", "to-gw", "up")
		// The cluster's VPC addresses: CoreDNS' pod, the api pods and
		// the load balancer. (No dummy interfaces in every kernel; lo
		// takes any address.)
		for _, a := range append([]string{c.coreDNS, c.lb}, c.pods...) {
			add("-n", c.ns, "addr", "add", a+"/32", "dev", "lo")
		}
		// Replies go back to the laptops through the gateway.
		add("-n", c.ns, "route", "add", "10.200.0.0/24", "via", c.gwSide)
		add("-n", c.ns, "route", "add", "10.200.3.0/24", "via", c.gwSide)
		// The gateway reaches the VPC through the tunnel (here, a link).
		add("-n", tp.gateway, "route", "add", c.vpc, "via", c.clusterGW)
	}
	// The laptop's routes into the tunnel are the WARP client's
	// (routeWARP, from the device profile's Split Tunnels).
	// Forwarding on in the gateway's namespace only (the sysctl is per
	// namespace).
	add("netns", "exec", tp.gateway, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	if err != nil {
		return err
	}
	// The laptops' resolver is WARP's DNS proxy, as WARP makes it.
	for _, ns := range []string{tp.laptop, tp.laptop2} {
		if err := os.MkdirAll(etcNetns(ns), 0o755); err != nil {
			return err
		}
		resolv := fmt.Sprintf("# %s: WARP client DNS proxy stand-in\nnameserver %s\noptions timeout:5 attempts:1\n", ns, warpProxyIP)
		if err := os.WriteFile(filepath.Join(etcNetns(ns), "resolv.conf"), []byte(resolv), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the namespaces (their veths go with them) and
// /etc/netns entries, ending any process still inside first. It is
// idempotent; processes still running are an error.
func (tp *topology) remove() error {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var errs []error
	for _, ns := range tp.namespaces() {
		if err := removeNamespace(ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeNamespace ends the processes inside ns (ours: only this test starts
// processes in namespaces of this name), deletes it and its /etc/netns
// directory. Missing pieces are fine.
func removeNamespace(ns string) error {
	var errs []error
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
		if pids := netnsPids(ns); len(pids) > 0 {
			errs = append(errs, fmt.Errorf("processes still running in %s: %v (killed)", ns, pids))
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			for deadline := time.Now().Add(10 * time.Second); len(netnsPids(ns)) > 0 && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if err := ip("netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(etcNetns(ns)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func netnsPids(ns string) []int {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeLeftovers deletes namespaces and /etc/netns entries of earlier runs
// whose test process is gone (a run killed before its cleanup). Runs still
// going are left alone.
func removeLeftovers() ([]string, error) {
	names := map[string]bool{}
	for _, dir := range []string{"/run/netns", "/etc/netns"} {
		for _, name := range entriesNamed(dir, prefix) {
			names[name] = true
		}
	}
	var removed []string
	var errs []error
	for name := range names {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(name, prefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
			continue // a run in progress
		}
		if err := removeNamespace(name); err != nil {
			errs = append(errs, err)
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// leftovers says what of this run still exists after remove.
func (tp *topology) leftovers() []string {
	var left []string
	for _, name := range entriesNamed("/run/netns", tp.run) {
		left = append(left, "namespace "+name)
	}
	for _, name := range entriesNamed("/etc/netns", tp.run) {
		left = append(left, etcNetns(name))
	}
	if tp.host != "" {
		if now, err := hostNetwork(); err == nil && now != tp.host {
			left = append(left, fmt.Sprintf("the host's links or routes changed:\nbefore:\n%s\nafter:\n%s", tp.host, now))
		}
	}
	return left
}

// entriesNamed lists the entries of dir whose names start with prefix: in
// /run/netns, the network namespaces `ip netns` made; in /etc/netns, their
// files.
func entriesNamed(dir, prefix string) []string {
	entries, _ := os.ReadDir(dir) // no directory: no entries
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// hostNetwork is the host namespace's link names and routes, to show that
// the test leaves them as they were.
func hostNetwork() (string, error) {
	var b strings.Builder
	for _, args := range [][]string{{"-o", "link", "show"}, {"route", "show"}, {"-6", "route", "show"}} {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			return "", fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
		}
		if args[0] == "-o" {
			// Link names only: counters and states may change.
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if f := strings.SplitN(line, ": ", 3); len(f) > 1 {
					b.WriteString(f[1] + "\n")
				}
			}
			continue
		}
		b.Write(out)
	}
	return b.String(), nil
}
