package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// RepoRoot finds this repository's root from the working directory, so that
// tests in any package can build cmd/coredns and read Corefile.example.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/warpdns/warpdns\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the warpdns repository")
		}
		dir = parent
	}
}

// BuildOurCoreDNS builds ./cmd/coredns into dir as `make build` does
// (releaseEnv and releaseFlags) and returns the binary's path. With
// $WARPDNS_COREDNS set it returns that binary instead (e.g. the one `make
// build` wrote), so a built artifact can be tested as it is.
func BuildOurCoreDNS(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv("WARPDNS_COREDNS"); bin != "" {
		return bin, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "coredns")
	cmd := exec.CommandContext(ctx, "go", append(append([]string{"build"}, releaseFlags...), "-o", out, "./cmd/coredns")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), releaseEnv)
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/coredns: %w\n%s", err, output)
	}
	return out, nil
}

// CoreDNS is a coredns process started from a Corefile.
type CoreDNS struct {
	*Process
	Dir      string // holds the Corefile and coredns.log
	Corefile string // its text
	Ports    Ports  // the loopback ports RunCoreDNS gave it
	// ToReady is the time from the process start to the first passing
	// readiness check (RunCoreDNS: the ready plugin's first 200).
	ToReady time.Duration
}

// StartCoreDNS writes corefile into a new directory under parent, starts
// binary with it and waits until ready returns nil (e.g. the ready plugin's
// URL answers 200, see HTTPReady). The process dies with the caller.
func StartCoreDNS(ctx context.Context, binary, corefile, parent string, ready func() error) (*CoreDNS, error) {
	return StartCoreDNSIn(ctx, "", binary, corefile, parent, ready)
}

// StartCoreDNSIn is StartCoreDNS inside network namespace netns (as `ip
// netns` names it; "" is the caller's). ready runs in the caller's namespace:
// wrap it in InNetns, or dial with NetnsDialContext, to check from inside.
func StartCoreDNSIn(ctx context.Context, netns, binary, corefile, parent string, ready func() error) (*CoreDNS, error) {
	c, err := launchCoreDNS(parent, corefile, func(conf string) *exec.Cmd { return netnsCommand(netns, binary, "-conf", conf) })
	if err != nil {
		return nil, err
	}
	return waitReady(ctx, c, binary, ready)
}

// launchCoreDNS writes corefile into a new directory under parent and starts
// the command that command makes for that Corefile.
func launchCoreDNS(parent, corefile string, command func(conf string) *exec.Cmd) (*CoreDNS, error) {
	dir, err := os.MkdirTemp(parent, "coredns-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
		return nil, err
	}
	proc, err := startCommand(dir, "coredns", command(conf))
	if err != nil {
		return nil, err
	}
	return &CoreDNS{Process: proc, Dir: dir, Corefile: corefile}, nil
}

func waitReady(ctx context.Context, c *CoreDNS, binary string, ready func() error) (*CoreDNS, error) {
	if err := waitFor(ctx, 3*time.Minute, c.Process, ready); err != nil {
		c.Kill()
		return nil, fmt.Errorf("coredns (%s) not ready: %w", binary, err)
	}
	return c, nil
}

// Ports are the loopback ports one coredns gets.
type Ports struct{ DNS, VPC, Health, Ready, Metrics int }

// FreeCoreDNSPorts returns free loopback ports for one coredns.
func FreeCoreDNSPorts() (Ports, error) {
	free, err := FreePorts(5)
	if err != nil {
		return Ports{}, err
	}
	return Ports{DNS: free[0], VPC: free[1], Health: free[2], Ready: free[3], Metrics: free[4]}, nil
}

// DNSAddr is the (in-cluster) DNS listener, VPCAddr the VPC-facing one of
// Corefile.example, MetricsURL the prometheus plugin's.
func (p Ports) DNSAddr() string    { return fmt.Sprintf("127.0.0.1:%d", p.DNS) }
func (p Ports) VPCAddr() string    { return fmt.Sprintf("127.0.0.1:%d", p.VPC) }
func (p Ports) MetricsURL() string { return fmt.Sprintf("http://127.0.0.1:%d/metrics", p.Metrics) }

// Local says that a Corefile of Corefile.example's shape listens on these
// ports and uses kubeconfig and upstream (see RenderLocal).
func (p Ports) Local(kubeconfig, upstream string) LocalCorefile {
	return LocalCorefile{InClusterPort: p.DNS, VPCPort: p.VPC, HealthPort: p.Health, ReadyPort: p.Ready,
		MetricsPort: p.Metrics, Kubeconfig: kubeconfig, Upstream: upstream}
}

// RunOptions tune RunCoreDNS.
type RunOptions struct {
	Dir  string // parent of the process's directory (a temporary one if empty)
	Nice int    // niceness (see Niced)
}

// RunCoreDNS starts binary with the Corefile that corefile writes for free
// loopback ports and returns once it is ready: the ready plugin answers 200
// (if the Corefile has `ready 127.0.0.1:READY`), then each DNS listener the
// Corefile names (DNS, VPC) answers over UDP and TCP.
func RunCoreDNS(ctx context.Context, o RunOptions, binary string, corefile func(Ports) (string, error)) (*CoreDNS, error) {
	p, err := FreeCoreDNSPorts()
	if err != nil {
		return nil, err
	}
	text, err := corefile(p)
	if err != nil {
		return nil, err
	}
	c, err := launchCoreDNS(o.Dir, text, func(conf string) *exec.Cmd { return Niced(o.Nice, binary, "-conf", conf) })
	if err != nil {
		return nil, err
	}
	c.Ports = p
	var checks []func() error
	if strings.Contains(text, fmt.Sprintf("ready 127.0.0.1:%d\n", p.Ready)) {
		readyURL := HTTPReady(fmt.Sprintf("http://127.0.0.1:%d/ready", p.Ready))
		checks = append(checks, func() error {
			if c.ToReady == 0 {
				if err := readyURL(); err != nil {
					return err
				}
				c.ToReady = time.Since(c.Started)
			}
			return nil
		})
	}
	for _, port := range []int{p.DNS, p.VPC} {
		if strings.Contains(text, fmt.Sprintf(":%d ", port)) {
			checks = append(checks, DNSAnswers(fmt.Sprintf("127.0.0.1:%d", port)))
		}
	}
	return waitReady(ctx, c, binary, AllReady(checks...))
}

// HTTPReady returns a readiness check for an http URL that must answer 200,
// such as the ready plugin's http://127.0.0.1:PORT/ready.
func HTTPReady(url string) func() error {
	return func() error { return httpGet(insecureLoopbackClient, url, "") }
}

// HTTPReadyIn is HTTPReady for a URL inside network namespace netns, such as
// the ready plugin of a coredns started with StartCoreDNSIn.
func HTTPReadyIn(netns, url string) func() error {
	client := netnsLoopbackClient(netns)
	return func() error { return httpGet(client, url, "") }
}

// DNSAnswersIn is DNSAnswers for an address inside network namespace netns.
func DNSAnswersIn(netns, addr string) func() error {
	check := DNSAnswers(addr)
	return func() error { return InNetns(netns, check) }
}

// DNSAnswers returns a readiness check that passes once addr answers a query
// over both UDP and TCP. CoreDNS reports /ready before its DNS listeners are
// open, so tests wait for both.
func DNSAnswers(addr string) func() error {
	return func() error {
		for _, network := range []string{"udp", "tcp"} {
			m := new(dns.Msg)
			m.SetQuestion("ready.probe.invalid.", dns.TypeA)
			c := &dns.Client{Net: network, Timeout: time.Second}
			if _, _, err := c.Exchange(m, addr); err != nil {
				return fmt.Errorf("%s %s: %w", network, addr, err)
			}
		}
		return nil
	}
}

// Addresses returns the sorted A and AAAA addresses of rrs.
func Addresses(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	slices.Sort(out)
	return out
}

// AllReady combines readiness checks; it passes when each passes.
func AllReady(checks ...func() error) func() error {
	return func() error {
		for _, check := range checks {
			if err := check(); err != nil {
				return err
			}
		}
		return nil
	}
}
