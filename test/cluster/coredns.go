package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// BuildOurCoreDNS builds ./cmd/coredns into dir and returns the binary's path.
// With $WARPDNS_COREDNS set it returns that binary instead (e.g. the one
// `make build` wrote), so a built artifact can be tested as it is.
func BuildOurCoreDNS(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv("WARPDNS_COREDNS"); bin != "" {
		return bin, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "coredns")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/coredns")
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/coredns: %w\n%s", err, output)
	}
	return out, nil
}

// CoreDNS is a coredns process started from a Corefile.
type CoreDNS struct {
	proc *Process
	Dir  string // holds the Corefile and coredns.log
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
	dir, err := os.MkdirTemp(parent, "coredns-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
		return nil, err
	}
	proc, err := StartProcess(dir, netns, "coredns", binary, "-conf", conf)
	if err != nil {
		return nil, err
	}
	c := &CoreDNS{proc: proc, Dir: dir}
	if err := waitFor(ctx, 60*time.Second, proc, ready); err != nil {
		c.Stop()
		return nil, fmt.Errorf("coredns (%s) not ready: %w", binary, err)
	}
	return c, nil
}

// Stop stops the process (SIGTERM, then SIGKILL).
func (c *CoreDNS) Stop() error { return c.proc.Stop() }

// Log returns what the process printed so far.
func (c *CoreDNS) Log() string { return c.proc.Log() }

// HTTPReady returns a readiness check for an http URL that must answer 200,
// such as the ready plugin's http://127.0.0.1:PORT/ready.
func HTTPReady(url string) func() error {
	return func() error { return httpOK(url, "") }
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
