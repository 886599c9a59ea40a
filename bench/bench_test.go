package bench

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs every phase of `make bench` for a moment (1-second rounds,
// one round, 100 Services, 10 flips, the micro-benchmarks once each) and
// checks that the pipeline produces its report and chart. It checks no
// number: this is not the benchmark, `make bench` is.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and several coredns processes")
	}
	if _, err := exec.LookPath("dnsperf"); err != nil {
		t.Skip("dnsperf is not installed (Debian package dnsperf; .ci/run installs it): the bench's load generator")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cfg := Smoke
	cfg.Dir = t.TempDir()
	cfg.Logf = t.Logf
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Smoke = true

	md, err := r.Markdown(ReportOptions{Command: "go test ./bench/", Chart: "benchmarks.png", Findings: "findings"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| setup | ours QPS | upstream QPS |",
		"| stock Corefile, A of a ClusterIP Service |",
		"| VPC path, A (10 ready endpoints) |",
		"| VPC path, SRV (10 ready endpoints) |",
		"| VPC path, A (10 ready endpoints), random case |",
		"| saturated, plain block, A (10 ready endpoints), random case |",
		"RSS at the end of each round, ours − upstream (median), VPC path, A (10 ready endpoints), random case",
		"- VPC path, A (10 ready endpoints), random case: each side asked 65536 spellings",
		"| VPC path, A (10 ready endpoints), against upstream's stock Corefile |",
		"| Corefile.example in-cluster listener (:53), A of a ClusterIP Service, against upstream's stock Corefile |",
		"| ceiling: upstream *whoami* |",
		"- stock Corefile, A of a ClusterIP Service: 1 rounds, two processes a side. A/A in the same rounds",
		"- Rounds measured again for steal: stock-a 0,",
		"| upstream, stock Corefile |",
		"| ours, Corefile.example |",
		"| Corefile.example as it is (the production setting) | 10 |",
		"| saturated, stock Corefile, A of a ClusterIP Service |",
		"| saturated, plain block, A (10 ready endpoints) |",
		"| saturated, plain block, SRV (10 ready endpoints) |",
		"| ours, stock Corefile, binary as the linker wrote it |",
		"RSS after sync vs upstream, small world",
		"BenchmarkServeDNSHeadless",
		"BenchmarkServeDNSAliased",
		"BenchmarkServeDNSHeadlessRandomCase",
		"## Targets",
		"](benchmarks.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if len(r.Throughput) != 7 || len(r.Saturated) != 4 || len(r.Whoami) != 1 || len(r.SmallWorld.Setups) != 3 || len(r.Scale.Setups) != 3 || len(r.Propagation) != 1 {
		t.Errorf("results: %d pairs, %d saturated, %d whoami runs, %d small-world and %d scale setups, %d propagation variants; want 7, 4, 1, 3, 3, 1",
			len(r.Throughput), len(r.Saturated), len(r.Whoami), len(r.SmallWorld.Setups), len(r.Scale.Setups), len(r.Propagation))
	}
	for _, p := range r.Saturated {
		if p.Key == "sat-plain-a" && p.Peer == nil && p.NoPeer == "" {
			t.Errorf("%s: neither a k8s_gateway side nor why not", p.Title)
		}
		for _, sd := range p.sides() {
			if len(sd.Runs) != 1 || sd.Runs[0].CPUPerQuery <= 0 {
				t.Errorf("%s, %s: runs %+v", p.Title, sd.Server, sd.Runs)
			}
		}
	}
	for _, p := range r.Throughput {
		for _, run := range append(p.Ours.Runs, p.Upstream.Runs...) {
			if run.AllocsPerQuery <= 0 || run.BytesPerQuery <= 0 || run.RSS <= 0 {
				t.Errorf("%s: no allocations per query or RSS in %+v", p.Title, run)
			}
		}
	}
	for _, s := range append(r.SmallWorld.Setups, r.Scale.Setups...) {
		if len(s.Samples) != 1 || s.Samples[0].RSS == 0 || s.Samples[0].HeapInuse == 0 || len(s.Samples[0].Watches) == 0 {
			t.Errorf("%s: samples %+v", s.Name, s.Samples)
		}
	}
	img, err := r.Chart()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		t.Errorf("chart: %v", err)
	}
	if t.Failed() || testing.Verbose() {
		out := t.TempDir() + "/benchmarks.md"
		_ = os.WriteFile(out, []byte(md), 0o644)
		t.Logf("report:\n%s", md)
	}
}
