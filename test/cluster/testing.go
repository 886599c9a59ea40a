package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// shared is what one test binary shares: starting a control plane takes
// seconds, and tests keep out of each other's way by using their own
// namespaces.
var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error

	envOnce sync.Once
	env     *Env
	setup   any // what Setup's setup function returned
	envErr  error
}

// Shared returns the test binary's control plane, starting it on first use.
// A failure to build or start it fails the test with the reason. Packages
// that use it must call Main from TestMain so that it is stopped.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		shared.cluster, shared.err = Start(ctx, Options{Logf: stderrLogf})
	})
	if shared.err != nil {
		t.Fatalf("local control plane: %v", shared.err)
	}
	return shared.cluster
}

// Env is what the tests of a package run against: the shared control plane,
// our coredns built once, Corefile.example's text, and a scratch directory
// that Main removes.
type Env struct {
	*Cluster
	OurBin  string
	Example string
	TempDir string
	Logf    Logf // to stderr
}

// Setup returns what setup made of the test binary's Env, building both on
// first use; a failure fails the test. A test binary has one setup function:
// later calls get what the first call's made.
func Setup[T any](t testing.TB, setup func(context.Context, *Env) (T, error)) T {
	t.Helper()
	c := Shared(t)
	shared.envOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		if shared.env, shared.envErr = newEnv(ctx, c); shared.envErr == nil {
			shared.setup, shared.envErr = setup(ctx, shared.env)
		}
	})
	if shared.envErr != nil {
		t.Fatal(shared.envErr)
	}
	return shared.setup.(T)
}

// SharedEnv is the test binary's Env, for packages that need nothing more.
func SharedEnv(t testing.TB) *Env {
	t.Helper()
	return Setup(t, func(_ context.Context, e *Env) (*Env, error) { return e, nil })
}

func newEnv(ctx context.Context, c *Cluster) (*Env, error) {
	e := &Env{Cluster: c, Logf: stderrLogf}
	var err error
	if e.TempDir, err = os.MkdirTemp("", "warpdns-test-"); err != nil {
		return nil, err
	}
	if e.OurBin, err = BuildOurCoreDNS(ctx, e.TempDir); err != nil {
		return e, err
	}
	e.Example, err = Example()
	return e, err
}

// NoUpstream is forward's target in tests that need no internet: nothing
// listens there, so no query leaves loopback.
const NoUpstream = "127.0.0.1:9"

// RunExample runs our coredns with corefile (Corefile.example's shape, see
// RenderLocal) against the control plane, forwarding to NoUpstream.
func (e *Env) RunExample(ctx context.Context, corefile string) (*CoreDNS, error) {
	return RunCoreDNS(ctx, RunOptions{Dir: e.TempDir}, e.OurBin, LocalRenderer(corefile, e.Kubeconfig, NoUpstream))
}

// RunExampleForTest is RunExample for the duration of a test (see RunForTest).
func (e *Env) RunExampleForTest(t testing.TB, corefile string) *CoreDNS {
	t.Helper()
	return RunForTest(t, e.OurBin, LocalRenderer(corefile, e.Kubeconfig, NoUpstream))
}

// Main runs the tests, then stops the shared control plane and removes the
// Env's directory, if any:
//
//	func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	var errs []error
	if shared.cluster != nil {
		errs = append(errs, shared.cluster.Stop())
	}
	if shared.env != nil {
		errs = append(errs, os.RemoveAll(shared.env.TempDir))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the local control plane:", err)
	}
	return code
}

func stderrLogf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cluster: "+format+"\n", args...)
}

// RunForTest is RunCoreDNS for a test: it fails the test if coredns does not
// start, and stops it when the test ends (printing its log if the test
// failed).
func RunForTest(t testing.TB, binary string, corefile func(Ports) (string, error)) *CoreDNS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := RunCoreDNS(ctx, RunOptions{Dir: t.TempDir()}, binary, corefile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("coredns (%s) log:\n%s", binary, c.Log())
		}
	})
	return c
}

// NetnsForTest creates a network namespace named wdns-WHAT-PID with lo up for
// the test and deletes it when the test ends, after the processes the test
// started in it (those cleanups are registered later, so they run first).
// It skips the test where network namespaces cannot be made (not root, no
// iproute2).
func NetnsForTest(t testing.TB, what string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	ns := fmt.Sprintf("wdns-%s-%d", what, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	IPNetns(t, ns, "link", "set", "lo", "up")
	return ns
}

// IPNetns runs `ip -n ns ARGS...`, failing the test if it fails.
func IPNetns(t testing.TB, ns string, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
}
