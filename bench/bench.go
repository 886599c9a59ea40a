// Package bench measures our coredns against upstream CoreDNS v1.15.0 in the
// same run on the same machine: throughput and latency (dnsperf) at a fixed
// concurrency and, with plain server blocks, saturated (with k8s_gateway as
// a third side), memory in a small world and memory and startup with 10,000
// Services, propagation of endpoint readiness flips, and the plugins' Go
// micro-benchmarks. `make bench` runs it in full (see cmd/warpdns-bench) and
// writes docs/benchmarks.md; the smoke test in `make test` runs every phase
// for a few seconds so the pipeline keeps working.
//
// Everything runs on loopback: a local etcd + kube-apiserver, the coredns
// processes and a stub upstream for forward, all started by test/cluster,
// and dnsperf. k8s_gateway is built by test/cluster too (see
// cluster.K8sGatewayBinary: the module proxy does not serve it, so it needs
// $WARPDNS_K8S_GATEWAY_SRC, a checkout of its repository, the first time);
// without it the saturated A row says why it has no third side.
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/warpdns/warpdns/test/cluster"
)

// Config sizes a run. Full and Smoke are the two used.
type Config struct {
	Load      Load // the throughput comparisons at a fixed concurrency
	Saturated Load // the plain-block comparisons: dnsperf saturating the server
	Rounds    int  // alternating rounds per comparison of Load (the median is reported)
	SatRounds int  // ... of Saturated
	// StockRounds are the rounds of the two stock-Corefile comparisons, at
	// either load. Their target (0.98) is closer to 1 than the noise of a
	// few rounds on this machine, so each of their sides is two processes
	// (see Side.Twin) and they run for more rounds.
	StockRounds int
	Endpoints   int // ready endpoints behind the VPC-path Service

	Services            int // memory at scale: Services created
	EndpointsPerService int // ... each with one EndpointSlice of this many endpoints
	Namespaces          int // ... spread over this many namespaces
	ScaleRounds         int // alternating start-ups per setup (also for the small world)
	SmallServices       int // memory in a small world: Services created (the report counts all there are)

	Flips       int // propagation with the cluster zone not cached (Corefile.example)
	CachedFlips int // propagation with the cluster zone cached: Services flipped once each (0: skipped)

	Benchtime  string // go test -benchtime for the micro-benchmarks ("" for the default)
	BenchCount int    // go test -count for the micro-benchmarks (intervals need >= 6)

	// MaxSteal is the share of the machine's CPU time the hypervisor may
	// steal during a measured run before the round is measured again (see
	// measureRound); 0: never. This machine is a VM on a shared host: in
	// bursts of half a minute or so the host takes 20-50% of its CPU time,
	// and a run in such a burst reads up to half the QPS of its neighbour in
	// the round.
	MaxSteal float64

	// Nice is the niceness of the measured processes (coredns, dnsperf):
	// below 0 they get most of the CPU from other work on a shared machine.
	Nice int

	// Only, if not empty, are the keys of the throughput and saturated
	// comparisons to run (Pair.Key); the other phases do not run. For a
	// look at a few rows, not for docs/benchmarks.md.
	Only []string

	Dir  string               // scratch directory (a new temporary one if empty)
	Logf func(string, ...any) // progress
}

// Load is how dnsperf asks: Clients sockets, at most Outstanding queries in
// flight, for Round after an unrecorded Warmup.
type Load struct {
	Round, Warmup        time.Duration
	Clients, Outstanding int
}

// Full is `make bench`.
var Full = Config{
	Load:      Load{Round: 3 * time.Second, Warmup: time.Second, Clients: 10, Outstanding: 50},
	Saturated: Load{Round: 8 * time.Second, Warmup: time.Second, Clients: 4, Outstanding: 100},
	Rounds:    10, SatRounds: 10, StockRounds: 16, Endpoints: 10,
	Services: 10000, EndpointsPerService: 5, Namespaces: 10, ScaleRounds: 7, SmallServices: 2,
	Flips: 200, CachedFlips: 200,
	BenchCount: 6,
	MaxSteal:   0.03,
	Nice:       -10,
}

// Smoke runs every phase briefly; the numbers mean nothing.
var Smoke = Config{
	Load:      Load{Round: time.Second, Clients: 2, Outstanding: 10},
	Saturated: Load{Round: time.Second, Clients: 4, Outstanding: 100},
	Rounds:    1, SatRounds: 1, StockRounds: 1, Endpoints: 10,
	Services: 100, EndpointsPerService: 5, Namespaces: 2, ScaleRounds: 1, SmallServices: 2,
	Flips: 10, CachedFlips: 0,
	Benchtime: "1x", BenchCount: 1,
}

// Results is everything a run measured; Markdown renders it.
type Results struct {
	Config           Config
	Smoke            bool
	Started, Ended   time.Time
	Machine          Machine
	Load             []LoadSample
	Binaries         []Binary
	Throughput       []Pair // at Config.Load
	Saturated        []Pair // at Config.Saturated, plain server blocks
	Whoami           []perf // one per round
	Propagation      []Propagation
	SmallWorld       Scale
	Scale            Scale
	Micro            Micro
	DNSPerfCommand   string
	SatCommand       string
	DNSPerfVersion   string
	ThroughputSanity []string // the answers checked before measuring
}

// Run measures. It returns partial results with the error if a phase fails.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if _, err := exec.LookPath("dnsperf"); err != nil {
		return nil, fmt.Errorf("dnsperf is not installed (Debian package dnsperf): %w", err)
	}
	logf := cfg.Logf
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "warpdns-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	r := &Results{Config: cfg, Started: time.Now(), Machine: describeMachine(), DNSPerfVersion: dnsperfVersion(),
		DNSPerfCommand: dnsperfCommandLine(cfg.Load), SatCommand: dnsperfCommandLine(cfg.Saturated)}
	r.load("start")

	logf("building our coredns and upstream CoreDNS %s", cluster.UpstreamCoreDNS)
	built, err := cluster.BuildOurCoreDNS(ctx, cfg.Dir)
	if err != nil {
		return r, err
	}
	cached, err := cluster.UpstreamCoreDNSBinary(ctx, logf)
	if err != nil {
		return r, err
	}
	b := &bencher{cfg: cfg, r: r, linked: built}
	var gateway string
	gateway, b.whyNoGateway = cluster.K8sGatewayBinary(ctx, logf)
	for _, bin := range []struct {
		name, path string
		staged     *string
	}{{"ours", built, &b.ours}, {"upstream", cached, &b.upstream}, {"k8s_gateway", gateway, &b.gateway}} {
		if bin.path == "" {
			continue // k8s_gateway did not build
		}
		r.Binaries = append(r.Binaries, describeBinary(bin.name, bin.path))
		if *bin.staged, err = stage(cfg.Dir, bin.name, bin.path); err != nil {
			return r, err
		}
	}

	logf("starting etcd and kube-apiserver on loopback")
	if b.c, err = cluster.Start(ctx, cluster.Options{Logf: logf}); err != nil {
		return r, err
	}
	defer b.c.Stop()
	stub, stopStub, err := cluster.StubUpstream()
	if err != nil {
		return r, err
	}
	defer stopStub()
	if b.files, err = loadCorefiles(b.c.Kubeconfig, stub); err != nil {
		return r, err
	}
	defer b.stopAllBut(nil)

	if len(cfg.Only) == 0 {
		r.load("small world")
		if err := b.smallWorld(ctx); err != nil {
			return r, fmt.Errorf("memory in a small world: %w", err)
		}
	}
	if b.flips, err = seedWorld(ctx, b.c, cfg.Endpoints, max(1, cfg.CachedFlips)); err != nil {
		return r, fmt.Errorf("seeding the Services: %w", err)
	}
	phases := []struct {
		name string
		run  func(context.Context) error
	}{
		{"throughput", b.throughput},
		{"saturated plain blocks", b.saturated},
		{"propagation", b.propagation},
		{"memory at scale", b.scale},
		{"micro-benchmarks", b.micro},
	}
	if len(cfg.Only) > 0 {
		phases = phases[:2]
	}
	for _, phase := range phases {
		r.load(phase.name)
		if err := phase.run(ctx); err != nil {
			return r, fmt.Errorf("%s: %w", phase.name, err)
		}
	}
	r.load("end")
	r.Ended = time.Now()
	return r, nil
}

// bencher is one run's shared state.
type bencher struct {
	cfg                     Config
	r                       *Results
	c                       *cluster.Cluster
	files                   *corefiles
	flips                   []*flipper // the Services the propagation phase flips
	ours, upstream, gateway string     // staged copies (see stage); gateway "" if k8s_gateway did not build
	linked                  string     // ours as the Go linker wrote it
	whyNoGateway            string

	running       []*cluster.CoreDNS // stopped by stopAllBut
	exampleServer *cluster.CoreDNS   // ours with Corefile.example, from the throughput phase on
}

// start starts bin with the Corefile corefile writes (see
// cluster.RunCoreDNS) and stops it with the run.
func (b *bencher) start(ctx context.Context, name, bin string, corefile corefile) (*cluster.CoreDNS, error) {
	s, err := cluster.RunCoreDNS(ctx, cluster.RunOptions{Dir: b.cfg.Dir, Nice: b.cfg.Nice}, bin, corefile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	b.running = append(b.running, s)
	return s, nil
}

// stopAllBut stops every server but keep (nil: all of them).
func (b *bencher) stopAllBut(keep *cluster.CoreDNS) {
	for _, s := range b.running {
		if s != keep {
			s.Kill()
		}
	}
	b.running = nil
	if keep != nil {
		b.running = []*cluster.CoreDNS{keep}
	}
}

// stage copies bin into dir/bin with a plain write. Where a binary's file
// came from shows in its RSS: the Go linker writes its output through a
// memory map, and the page cache then holds it in large folios that a
// process maps with 2 MB pages, about 25 MB more RSS for the same program
// than a file written with write(2). All binaries are staged alike so that
// the RSS compares programs, not files (the small-world row shows both).
func stage(dir, name, bin string) (string, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "bin", "coredns-"+name)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	return out, os.WriteFile(out, data, 0o755)
}
