package cluster

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// shared is one control plane per test binary: starting one takes seconds,
// and tests keep out of each other's way by using their own namespaces.
var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
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

// Main runs the tests and then stops the shared control plane, if any:
//
//	func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared.cluster != nil {
		if err := shared.cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the local control plane:", err)
		}
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
