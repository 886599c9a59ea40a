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
	"io"
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
	Endpoints int  // ready endpoints behind the VPC-path Service

	Services            int // memory at scale: Services created
	EndpointsPerService int // ... each with one EndpointSlice of this many endpoints
	Namespaces          int // ... spread over this many namespaces
	ScaleRounds         int // alternating start-ups per setup (also for the small world)
	SmallServices       int // memory in a small world: Services created (the report counts all there are)

	Flips       int // propagation with the cluster zone not cached (Corefile.example)
	CachedFlips int // propagation with the cluster zone cached: Services flipped once each (0: skipped)

	Benchtime  string // go test -benchtime for the micro-benchmarks ("" for the default)
	BenchCount int    // go test -count for the micro-benchmarks (intervals need >= 6)

	// Nice is the niceness of the measured processes (coredns, dnsperf):
	// below 0 they get most of the CPU from other work on a shared machine.
	Nice int

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
	Rounds:    10, SatRounds: 10, Endpoints: 10,
	Services: 10000, EndpointsPerService: 5, Namespaces: 10, ScaleRounds: 7, SmallServices: 2,
	Flips: 200, CachedFlips: 200,
	BenchCount: 6,
	Nice:       -10,
}

// Smoke runs every phase briefly; the numbers mean nothing.
var Smoke = Config{
	Load:      Load{Round: time.Second, Clients: 2, Outstanding: 10},
	Saturated: Load{Round: time.Second, Clients: 4, Outstanding: 100},
	Rounds:    1, SatRounds: 1, Endpoints: 10,
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
	r := &Results{Config: cfg, Started: time.Now(), DNSPerfCommand: dnsperfCommandLine(cfg.Load), SatCommand: dnsperfCommandLine(cfg.Saturated)}
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
	gateway, whyNoGateway := cluster.K8sGatewayBinary(ctx, logf)
	r.Binaries = []Binary{describeBinary("ours", built), describeBinary("upstream", cached)}
	if gateway != "" {
		r.Binaries = append(r.Binaries, describeBinary("k8s_gateway", gateway))
	}
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
	if gateway != "" {
		if gateway, err = stage(bins, "coredns-k8s_gateway", gateway); err != nil {
			return r, err
		}
	}

	logf("starting etcd and kube-apiserver on loopback")
	c, err := cluster.Start(ctx, cluster.Options{Logf: logf, Dir: ""})
	if err != nil {
		return r, err
	}
	defer c.Stop()
	stub, stopStub, err := cluster.StubUpstream()
	if err != nil {
		return r, err
	}
	defer stopStub()
	files, err := loadCorefiles(c.Kubeconfig, stub)
	if err != nil {
		return r, err
	}
	b := &bencher{cfg: cfg, c: c, files: files, ours: ours, upstream: upstream, linked: built,
		gateway: gateway, whyNoGateway: whyNoGateway, r: r}
	defer b.stopAll()

	r.load("small world")
	if err := b.smallWorld(ctx); err != nil {
		return r, fmt.Errorf("memory in a small world: %w", err)
	}
	if b.world, err = seedWorld(ctx, c, cfg.Endpoints, max(1, cfg.CachedFlips)); err != nil {
		return r, fmt.Errorf("seeding the Services: %w", err)
	}

	for _, phase := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"throughput", b.throughput},
		{"saturated plain blocks", b.saturated},
		{"propagation", b.propagation},
		{"memory at scale", b.scale},
		{"micro-benchmarks", b.micro},
	} {
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
	cfg            Config
	c              *cluster.Cluster
	files          *corefiles
	ours, upstream string // staged copies (see stage)
	linked         string // ours as the Go linker wrote it
	gateway        string // k8s_gateway, staged; "" if it could not be built
	whyNoGateway   string
	world          *world
	r              *Results

	running       []*server // stopped by stopAll
	exampleServer *server   // ours with Corefile.example, from the throughput phase on
}

// server is a coredns the bench started.
type server struct {
	*cluster.CoreDNS
	name string
}

func (s *server) stop() { s.Kill() }

// The Go runtime's allocation counters, as the prometheus plugin exports them.
const (
	mallocsTotal    = "go_memstats_mallocs_total"
	allocBytesTotal = "go_memstats_alloc_bytes_total"
)

func (s *server) memstats() (map[string]float64, error) {
	return cluster.ScrapeValues(s.Ports.MetricsURL(), mallocsTotal, allocBytesTotal)
}

// startServer starts bin with the Corefile corefile writes (see
// cluster.RunCoreDNS) and stops it with the run.
func (b *bencher) start(ctx context.Context, name, bin string, corefile func(cluster.Ports) (string, error)) (*server, error) {
	c, err := cluster.RunCoreDNS(ctx, cluster.RunOptions{Dir: b.cfg.Dir, Nice: b.cfg.Nice}, bin, corefile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &server{CoreDNS: c, name: name}
	b.running = append(b.running, s)
	return s, nil
}

// stopAllBut stops every server but keep.
func (b *bencher) stopAllBut(keep *server) {
	var left []*server
	for _, s := range b.running {
		if s == keep {
			left = append(left, s)
		} else {
			s.stop()
		}
	}
	b.running = left
}

func (b *bencher) stopAll() {
	for _, s := range b.running {
		s.stop()
	}
	b.running = nil
}

// stage copies bin into dir with a plain write. Where a binary's file came
// from shows in its RSS: the Go linker writes its output through a memory
// map, and the page cache then holds it in large folios that a process maps
// with 2 MB pages, about 25 MB more RSS for the same program than a file
// written with write(2). Both binaries are staged alike so that the RSS
// compares programs, not files (the small-world row shows both).
func stage(dir, name, bin string) (string, error) {
	src, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer src.Close()
	out := filepath.Join(dir, name)
	dst, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", err
	}
	return out, dst.Close()
}
