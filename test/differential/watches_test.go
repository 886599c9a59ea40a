package differential

import (
	"context"
	"maps"
	"testing"
	"time"
)

// TestOneSetOfWatches: Corefile.example serves two listeners (in-cluster and
// VPC-facing) from one server block, so it must hold exactly as many watches
// on the apiserver as upstream with the stock Corefile: the plugins read the
// kubernetes plugin's cache, they never start their own.
func TestOneSetOfWatches(t *testing.T) {
	w := setUp(t)
	upstream := w.watchesOf(t, func() server { return w.startCoreDNS(t, w.upstreamBin, "") })
	example := w.watchesOf(t, func() server { return w.startExample(t) })
	t.Logf("watches on the apiserver: upstream stock %v, ours with Corefile.example %v", upstream, example)
	if !maps.Equal(upstream, example) {
		t.Errorf("Corefile.example holds watches %v, upstream stock %v", example, upstream)
	}
	if len(upstream) == 0 {
		t.Error("measured no watches at all: the measurement is broken")
	}
}

// watchesOf starts a server and returns the watches it opened on the
// apiserver once they have settled; it stops the server and waits for them
// to close.
func (w *world) watchesOf(t *testing.T, start func() server) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	baseline, err := w.Watches()
	if err != nil {
		t.Fatal(err)
	}
	s := start()
	opened, err := w.SettledWatches(ctx, baseline)
	if err != nil {
		t.Fatal(err)
	}
	s.stop()
	if err := w.WatchesClosed(ctx, baseline); err != nil {
		t.Fatal(err)
	}
	return opened
}
