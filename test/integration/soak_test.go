package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/warpdns/warpdns/test/cluster"
)

// propagationBound is how long an endpoint may still be answered after the
// API write that removed it (or made it not ready): the informer's delivery
// time, with a wide margin for a loaded machine. It is a correctness bound,
// not a speed target; bench/ measures the real propagation time.
const propagationBound = 5 * time.Second

// TestSoak queries both listeners without pause while the endpoints of a
// Service churn (added, removed, readiness flipped), and requires zero
// SERVFAIL, no answer naming an endpoint gone for longer than
// propagationBound, and no goroutine growth. WARPDNS_SOAK sets the duration
// (make soak: 60s); make test runs a short one.
func TestSoak(t *testing.T) {
	duration := 5 * time.Second
	if v := os.Getenv("WARPDNS_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("WARPDNS_SOAK=%q: %v", v, err)
		}
		duration = d
	}
	e := setUp(t)
	ns := e.namespace(t, "soak")
	churn := newChurner(t, e, ns)
	eventually(t, "the soak Service answers", func() error {
		if len(ask(t, e.vpc, "api."+ns+".svc.cluster.local.", dns.TypeA).Answer) == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	before := scrape(t, e.metrics)

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var (
		queries, servfails, stale atomic.Int64
		wg                        sync.WaitGroup
		firstStale                atomic.Value
	)
	for _, target := range []struct{ addr, name string }{
		{e.vpc, "api." + ns + ".svc.cluster.local."},
		{e.vpc, "stg-api." + ns + ".svc.cluster.local."},
		{e.vpc, "_http._tcp.stg-api." + ns + ".svc.cluster.local."},
		{e.inCluster, "api." + ns + ".svc.cluster.local."},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Timeout: 2 * time.Second}
			qtype := dns.TypeA
			if strings.HasPrefix(target.name, "_") {
				qtype = dns.TypeSRV
			}
			for ctx.Err() == nil {
				m := new(dns.Msg)
				m.SetQuestion(target.name, qtype)
				asked := time.Now()
				r, _, err := c.Exchange(m, target.addr)
				queries.Add(1)
				if err != nil || r.Rcode == dns.RcodeServerFailure {
					servfails.Add(1)
					continue
				}
				if target.addr != e.vpc {
					continue
				}
				for _, ip := range addresses(append(r.Answer, r.Extra...)) {
					if gone, ok := churn.goneSince(ip); ok && asked.Sub(gone) > propagationBound {
						stale.Add(1)
						firstStale.CompareAndSwap(nil, fmt.Sprintf("%s answered %v after it was removed", target.name, asked.Sub(gone)))
					}
				}
			}
		}()
	}
	writes := churn.run(ctx, t)
	wg.Wait()

	// Let the server settle: idle connections and per-query goroutines end.
	var after map[string]float64
	eventually(t, "goroutines back to their level before the soak", func() error {
		after = scrape(t, e.metrics)
		if after["go_goroutines"] > before["go_goroutines"]+5 {
			return fmt.Errorf("go_goroutines %v before, %v after", before["go_goroutines"], after["go_goroutines"])
		}
		return nil
	})
	t.Logf("soak %v: %d queries, %d API writes, %d SERVFAIL/errors, %d stale answers; goroutines %v -> %v, heap in use %.1f MiB -> %.1f MiB",
		duration, queries.Load(), writes, servfails.Load(), stale.Load(),
		before["go_goroutines"], after["go_goroutines"],
		before["go_memstats_heap_inuse_bytes"]/(1<<20), after["go_memstats_heap_inuse_bytes"]/(1<<20))
	if servfails.Load() != 0 {
		t.Errorf("%d queries failed or got SERVFAIL", servfails.Load())
	}
	if stale.Load() != 0 {
		t.Errorf("%d stale answers; first: %v", stale.Load(), firstStale.Load())
	}
	if after["go_memstats_heap_inuse_bytes"] > 2*before["go_memstats_heap_inuse_bytes"]+16<<20 {
		t.Errorf("heap grew from %v to %v bytes", before["go_memstats_heap_inuse_bytes"], after["go_memstats_heap_inuse_bytes"])
	}
}

// churner owns the endpoints of Service api and remembers when each address
// stopped being a ready endpoint.
type churner struct {
	e      *env
	svc    *corev1.Service
	mu     sync.Mutex
	eps    []cluster.Endpoint
	gone   map[string]time.Time // address -> when the write that removed it was sent
	nextIP int
}

// newChurner creates Service api in ns with ten ready endpoints.
func newChurner(t *testing.T, e *env, ns string) *churner {
	c := &churner{e: e, gone: map[string]time.Time{}}
	for range 10 {
		c.eps = append(c.eps, cluster.Endpoint{IP: c.newIP()})
	}
	c.svc = e.service(t, cluster.ClusterIPService(ns, "api"), c.eps, nil)
	return c
}

func (c *churner) newIP() string {
	c.nextIP++
	return fmt.Sprintf("10.30.%d.%d", c.nextIP/250, c.nextIP%250+1)
}

func (c *churner) goneSince(ip string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.gone[ip]
	return t, ok
}

// run changes the endpoints every 50ms until ctx ends, and returns the
// number of API writes.
func (c *churner) run(ctx context.Context, t *testing.T) int {
	writes := 0
	for ctx.Err() == nil {
		c.mu.Lock()
		i := rand.IntN(len(c.eps))
		var removed string
		switch rand.IntN(3) {
		case 0: // a pod goes away, another comes
			removed = c.eps[i].IP
			c.eps[i] = cluster.Endpoint{IP: c.newIP()}
		case 1: // readiness flips
			c.eps[i].NotReady = !c.eps[i].NotReady
			if c.eps[i].NotReady {
				removed = c.eps[i].IP
			} else {
				delete(c.gone, c.eps[i].IP)
			}
		case 2: // a pod starts terminating, a new one replaces it
			removed = c.eps[i].IP
			c.eps = append(c.eps, cluster.Endpoint{IP: c.newIP()})
			c.eps[i].Terminating = true
			if len(c.eps) > 14 {
				c.eps = append(c.eps[:i], c.eps[i+1:]...)
			}
		}
		// The address counts as gone from the moment the write is sent:
		// stricter than from when it is stored.
		if _, ok := c.gone[removed]; removed != "" && !ok {
			c.gone[removed] = time.Now()
		}
		eps := append([]cluster.Endpoint(nil), c.eps...)
		c.mu.Unlock()
		if err := c.e.SetEndpoints(context.Background(), c.svc, eps, nil); err != nil {
			t.Errorf("churn: %v", err)
			return writes
		}
		writes++
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return writes
}

// scrape reads the goroutine count and the heap in use from the prometheus
// plugin at url.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	values, err := cluster.ScrapeValues(url, "go_goroutines", "go_memstats_heap_inuse_bytes")
	if err != nil {
		t.Fatal(err)
	}
	return values
}
