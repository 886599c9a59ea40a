// Package bench measures our coredns against upstream CoreDNS v1.15.0 in the
// same run on the same machine: throughput and latency (dnsperf), memory and
// startup with 10,000 Services, propagation of endpoint readiness flips, and
// the plugins' Go micro-benchmarks. `make bench` runs it in full (see
// cmd/warpdns-bench) and writes docs/benchmarks.md; the smoke test in `make
// test` runs every phase for a few seconds so the pipeline keeps working.
//
// Everything runs on loopback: a local etcd + kube-apiserver (test/cluster),
// the coredns processes, a stub upstream for forward, and dnsperf.
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
	Round       time.Duration // one dnsperf run
	Warmup      time.Duration // an unrecorded dnsperf run right before each measured one
	Rounds      int           // alternating rounds per comparison (the median is reported)
	Clients     int           // dnsperf -c
	Outstanding int           // dnsperf -q: queries in flight, fixed
	Endpoints   int           // ready endpoints behind the VPC-path Service

	Services            int // memory at scale: Services created
	EndpointsPerService int // ... each with one EndpointSlice of this many endpoints
	Namespaces          int // ... spread over this many namespaces
	ScaleRounds         int // alternating start-ups per setup

	Flips       int // propagation with the cluster zone not cached (Corefile.example)
	CachedFlips int // propagation with the cluster zone cached: Services flipped once each (0: skipped)

	Benchtime string // go test -benchtime for the micro-benchmarks ("" for the default)

	// Nice is the niceness of the measured processes (coredns, dnsperf):
	// below 0 they get most of the CPU from other work on a shared machine.
	Nice int

	Dir  string               // scratch directory (a new temporary one if empty)
	Logf func(string, ...any) // progress
}

// Full is `make bench`.
var Full = Config{
	Round: 3 * time.Second, Rounds: 10, Warmup: time.Second, Clients: 10, Outstanding: 50, Endpoints: 10,
	Services: 10000, EndpointsPerService: 5, Namespaces: 10, ScaleRounds: 7,
	Flips: 200, CachedFlips: 200,
	Nice: -10,
}

// Smoke runs every phase briefly; the numbers mean nothing.
var Smoke = Config{
	Round: time.Second, Rounds: 1, Clients: 2, Outstanding: 10, Endpoints: 10,
	Services: 100, EndpointsPerService: 5, Namespaces: 2, ScaleRounds: 1,
	Flips: 10, CachedFlips: 0,
	Benchtime: "1x",
}

// Results is everything a run measured; Markdown renders it.
type Results struct {
	Config           Config
	Smoke            bool
	Started, Ended   time.Time
	Machine          Machine
	Load             []LoadSample
	Binaries         []Binary
	Throughput       []Pair
	Whoami           []perf // one per round
	Propagation      []Propagation
	Scale            Scale
	Micro            Micro
	ProfileNote      string
	DNSPerfCommand   string
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
	r := &Results{Config: cfg, Started: time.Now(), DNSPerfCommand: dnsperfCommandLine(cfg)}
	r.Machine = describeMachine()
	r.DNSPerfVersion = dnsperfVersion()
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
	r.Binaries = []Binary{describeBinary("ours", built), describeBinary("upstream", cached)}
	bins := filepath.Join(cfg.Dir, "bin")
	if err := os.MkdirAll(bins, 0o755); err != nil {
		return r, err
	}
	ours, err := stage(bins, "coredns-ours", built)
	if err != nil {
		return r, err
	}
	upstream, err := stage(bins, "coredns-upstream", cached)
	if err != nil {
		return r, err
	}

	logf("starting etcd and kube-apiserver on loopback")
	c, err := cluster.Start(ctx, cluster.Options{Logf: logf, Dir: ""})
	if err != nil {
		return r, err
	}
	defer c.Stop()
	stubCtx, stopStub := context.WithCancel(ctx)
	defer stopStub()
	stub, err := stubUpstream(stubCtx)
	if err != nil {
		return r, err
	}
	files, err := loadCorefiles(c.Kubeconfig, stub)
	if err != nil {
		return r, err
	}
	b := &bencher{cfg: cfg, c: c, files: files, ours: ours, upstream: upstream, r: r}
	defer b.stopAll()

	if b.world, err = seedWorld(ctx, c, cfg.Endpoints, max(1, cfg.CachedFlips)); err != nil {
		return r, fmt.Errorf("seeding the Services: %w", err)
	}

	r.load("throughput")
	if err := b.throughput(ctx); err != nil {
		return r, fmt.Errorf("throughput: %w", err)
	}
	r.load("propagation")
	if err := b.propagation(ctx); err != nil {
		return r, fmt.Errorf("propagation: %w", err)
	}
	r.load("scale")
	if err := b.scale(ctx); err != nil {
		return r, fmt.Errorf("memory at scale: %w", err)
	}
	r.load("micro-benchmarks")
	if err := b.micro(ctx); err != nil {
		return r, fmt.Errorf("micro-benchmarks: %w", err)
	}
	r.load("end")
	r.Ended = time.Now()
	return r, nil
}

// bencher is one run's shared state.
type bencher struct {
	cfg            Config
	c              *cluster.Cluster
	files          *corefiles
	ours, upstream string
	world          *world
	r              *Results

	running       []*server // stopped by stopAll
	exampleServer *server   // ours with Corefile.example, from the throughput phase on
}

func (b *bencher) start(ctx context.Context, name, bin string, corefile func(ports) (string, error)) (*server, error) {
	s, err := startServer(ctx, b.cfg.Dir, b.cfg.Nice, name, bin, corefile)
	if err != nil {
		return nil, err
	}
	b.running = append(b.running, s)
	return s, nil
}

func (b *bencher) stopAll() {
	for _, s := range b.running {
		s.stop()
	}
	b.running = nil
}
