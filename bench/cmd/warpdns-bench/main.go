// Command warpdns-bench is `make bench`: it measures our coredns against
// upstream CoreDNS v1.15.0 on this machine (loopback only) and writes a
// markdown report and a chart. See package bench.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/warpdns/warpdns/bench"
)

func main() {
	out := flag.String("out", "docs/benchmarks.md", "the markdown report to write")
	chart := flag.String("chart", "docs/benchmarks.png", "the chart to write (empty: none)")
	findings := flag.String("findings", "bench/findings.md", "markdown to include as the profiling and findings section (empty or missing: none)")
	command := flag.String("command", "make bench", "how the report says it was made")
	smoke := flag.Bool("smoke", false, "run every phase for a moment only (the numbers mean nothing)")
	rounds := flag.Int("rounds", 0, "rounds per comparison, both loads (0: the run's default)")
	rows := flag.String("rows", "", "comma-separated keys of the throughput and saturated comparisons to run, and no other phase (e.g. vpc-a,vpc-srv,vpc-a-case); for a look, not for docs/benchmarks.md")
	flag.Parse()

	cfg := bench.Full
	if *smoke {
		cfg = bench.Smoke
	}
	if *rounds > 0 {
		cfg.Rounds, cfg.SatRounds = *rounds, *rounds
	}
	if *rows != "" {
		cfg.Only = strings.Split(*rows, ",")
	}
	start := time.Now()
	cfg.Logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fail := func(what string, err error) {
		fmt.Fprintln(os.Stderr, what, err)
		os.Exit(1)
	}
	r, err := bench.Run(ctx, cfg)
	if err != nil {
		fail("bench:", err)
	}
	r.Smoke = *smoke
	opts := bench.ReportOptions{Command: *command, Invocation: "go run ./bench/cmd/warpdns-bench " + strings.Join(os.Args[1:], " ")}
	if *findings != "" {
		if data, err := os.ReadFile(*findings); err == nil {
			opts.Findings = string(data)
		}
	}
	if *chart != "" {
		png, err := r.Chart()
		if err != nil {
			fail("bench: chart:", err)
		}
		if err := writeFile(*chart, png); err != nil {
			fail("bench:", err)
		}
		opts.Chart = *chart
		if rel, err := filepath.Rel(filepath.Dir(*out), *chart); err == nil {
			opts.Chart = filepath.ToSlash(rel)
		}
	}
	md, err := r.Markdown(opts)
	if err != nil {
		fail("bench: report:", err)
	}
	if err := writeFile(*out, []byte(md)); err != nil {
		fail("bench:", err)
	}
	fmt.Print(r.TargetsText())
	fmt.Printf("wrote %s", *out)
	if *chart != "" {
		fmt.Printf(" and %s", *chart)
	}
	fmt.Printf(" (%v)\n", time.Since(start).Round(time.Second))
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
