package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/warpdns/warpdns/test/cluster"
)

// Propagation is one variant of the readiness-flip measurement.
type Propagation struct {
	Name      string
	Corefile  string
	Lanes     int           // Services flipped concurrently
	Poll      time.Duration // pause between two queries of one lane (0: none)
	Spread    time.Duration // each lane flips after a random delay in [0, Spread), asking all along
	Timeout   time.Duration
	Latencies []time.Duration // API write issued -> first answer that reflects it
	Writes    []time.Duration // how long the API write itself took
	Timeouts  int
}

func (b *bencher) propagation(ctx context.Context) error {
	cfg, logf := b.cfg, b.cfg.Logf
	if cfg.Flips > 0 {
		logf("propagation: %d flips, Corefile.example as it is (cluster zone not cached)", cfg.Flips)
		p := Propagation{Name: "cluster zone not cached", Corefile: "Corefile.example as it is (the production setting)",
			Lanes: 1, Timeout: 10 * time.Second}
		if err := b.flip(ctx, b.exampleServer.Ports.VPCAddr(), &p, cfg.Flips); err != nil {
			return err
		}
		b.r.Propagation = append(b.r.Propagation, p)
	}
	b.exampleServer.Kill()

	if cfg.CachedFlips > 0 {
		s, err := b.start(ctx, "ours Corefile.example, cluster zone cached", b.ours, b.files.exampleCached)
		if err != nil {
			return err
		}
		// A flip right after the answer changed would always wait for a
		// whole fresh TTL. So each Service is flipped once, at a random
		// moment of its cache entry's life: the lane asks every 100 ms
		// (a client that keeps the entry warm) and flips after a random
		// delay of up to one TTL.
		lanes := min(cfg.CachedFlips, len(b.flips))
		logf("propagation: %d Services flipped once each at random moments, cluster zone cached (cache 30: up to 30 s each)", lanes)
		p := Propagation{Name: "cluster zone cached", Corefile: "Corefile.example with `cache 30` for the cluster zone too (its two `disable` lines dropped)",
			Lanes: lanes, Poll: 100 * time.Millisecond, Spread: 30 * time.Second, Timeout: 45 * time.Second}
		if err := b.flip(ctx, s.Ports.VPCAddr(), &p, lanes); err != nil {
			return err
		}
		b.r.Propagation = append(b.r.Propagation, p)
		s.Kill()
	}
	return nil
}

// flip runs flips readiness flips spread over p.Lanes Services, each lane
// flipping its Service and polling the VPC listener for its name until the
// answer shows the flip.
func (b *bencher) flip(ctx context.Context, vpc string, p *Propagation, flips int) error {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
	)
	for lane := range p.Lanes {
		n := flips / p.Lanes
		if lane < flips%p.Lanes {
			n++
		}
		wg.Go(func() {
			var delay time.Duration
			if p.Spread > 0 {
				delay = rand.N(p.Spread)
			}
			err := b.flipLane(ctx, vpc, b.flips[lane], n, delay, p, &mu)
			mu.Lock()
			defer mu.Unlock()
			if first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if len(p.Latencies) == 0 {
		return fmt.Errorf("%s: no flip was seen", p.Name)
	}
	return nil
}

// flipLane flips f n times, after delay, and records in p (under mu) how
// long each flip took to show on vpc.
func (b *bencher) flipLane(ctx context.Context, vpc string, f *flipper, n int, delay time.Duration, p *Propagation, mu *sync.Mutex) error {
	q := &querier{client: &dns.Client{Net: "udp", Timeout: time.Second}, addr: vpc}
	var err error
	if q.conn, err = q.client.Dial(vpc); err != nil {
		return err
	}
	defer func() { q.conn.Close() }() // waitFor may have dialed again
	// Start from a state the server already shows.
	if _, ok := q.waitFor(ctx, f.qname, f.answer(f.down), p.Poll, p.Timeout); !ok {
		return fmt.Errorf("%s never answered %v", f.qname, f.answer(f.down))
	}
	if delay > 0 {
		// Keep asking, as a client would, until it is time to flip.
		q.waitFor(ctx, f.qname, nil, p.Poll, delay)
	}
	for range n {
		slice, want := f.next()
		done := make(chan error, 1)
		t0 := time.Now()
		var wrote time.Duration
		go func() {
			err := f.update(ctx, b.c, slice)
			wrote = time.Since(t0)
			done <- err
		}()
		seen, ok := q.waitFor(ctx, f.qname, want, p.Poll, p.Timeout)
		if err := <-done; err != nil {
			return fmt.Errorf("updating %s: %w", slice.Name, err)
		}
		mu.Lock()
		p.Writes = append(p.Writes, wrote)
		if ok {
			p.Latencies = append(p.Latencies, seen.Sub(t0))
		} else {
			p.Timeouts++
		}
		mu.Unlock()
	}
	return nil
}

// querier asks one name over one UDP socket, as fast as answers come.
type querier struct {
	client *dns.Client
	conn   *dns.Conn
	addr   string
}

// waitFor asks name (A) until the answer is exactly want (sorted), and
// returns when that answer arrived; with want nil, it asks until timeout.
func (q *querier) waitFor(ctx context.Context, name string, want []string, poll, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.SetEdns0(4096, false)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		m.Id = dns.Id()
		r, _, err := q.client.ExchangeWithConn(m, q.conn)
		at := time.Now()
		if err == nil && r.Rcode == dns.RcodeSuccess && want != nil && slices.Equal(cluster.Addresses(r.Answer), want) {
			return at, true
		}
		if _, isNetErr := err.(net.Error); err != nil && !isNetErr { // a timeout is retried; anything else reopens the socket
			q.conn.Close()
			if conn, derr := q.client.Dial(q.addr); derr == nil {
				q.conn = conn
			}
		}
		if poll > 0 {
			time.Sleep(poll)
		}
	}
	return time.Time{}, false
}
