package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"

	"github.com/warpdns/warpdns/test/cluster"
)

// Micro is the plugins' Go benchmarks, as `go test -bench` printed them,
// summarized as benchstat does: the median of the -count runs with its 95%
// confidence interval.
type Micro struct {
	Command string
	Output  string
	Results []MicroResult
}

// MicroResult is one benchmark over its runs.
type MicroResult struct {
	Package, Name       string
	Runs                int
	NsPerOp, BytesPerOp benchmath.Summary
	AllocsPerOp         benchmath.Summary
	NsRange             string // the ± of the interval, as benchstat prints it
}

func (b *bencher) micro(ctx context.Context) error {
	root, err := cluster.RepoRoot()
	if err != nil {
		return err
	}
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", fmt.Sprintf("-count=%d", max(1, b.cfg.BenchCount))}
	if b.cfg.Benchtime != "" {
		args = append(args, "-benchtime", b.cfg.Benchtime)
	}
	args = append(args, "./plugin/...")
	b.cfg.Logf("micro-benchmarks: go %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	m := &b.r.Micro
	m.Command = "go " + quoteArgs(args)
	m.Output = string(out)
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", m.Command, err, tail(m.Output, 30))
	}
	if m.Results, err = summarizeBench(out); err != nil {
		return fmt.Errorf("%s: %w", m.Command, err)
	}
	if len(m.Results) == 0 {
		return fmt.Errorf("%s printed no benchmark results:\n%s", m.Command, tail(m.Output, 30))
	}
	return nil
}

// summarizeBench reads `go test -bench` output (the Go benchmark format)
// and summarizes each benchmark's runs, in the order they first appear.
func summarizeBench(out []byte) ([]MicroResult, error) {
	type key struct{ pkg, name string }
	var order []key
	values := map[key]map[string][]float64{} // unit -> one value per run
	reader := benchfmt.NewReader(bytes.NewReader(out), "go test output")
	for reader.Scan() {
		res, ok := reader.Result().(*benchfmt.Result)
		if !ok {
			continue // a syntax error is a line of other output (PASS, ok ...)
		}
		k := key{strings.TrimPrefix(res.GetConfig("pkg"), "github.com/warpdns/warpdns/"), res.Name.String()}
		if values[k] == nil {
			values[k] = map[string][]float64{}
			order = append(order, k)
		}
		for _, v := range res.Values {
			unit, value := v.Unit, v.Value
			if v.OrigUnit != "" { // as go test printed it: ns/op, not benchfmt's sec/op
				unit, value = v.OrigUnit, v.OrigValue
			}
			values[k][unit] = append(values[k][unit], value)
		}
	}
	if err := reader.Err(); err != nil {
		return nil, err
	}
	summary := func(xs []float64) benchmath.Summary {
		return benchmath.AssumeNothing.Summary(benchmath.NewSample(xs, &benchmath.DefaultThresholds), 0.95)
	}
	var results []MicroResult
	for _, k := range order {
		v := values[k]
		r := MicroResult{Package: k.pkg, Name: "Benchmark" + k.name, Runs: len(v["ns/op"]),
			NsPerOp: summary(v["ns/op"]), BytesPerOp: summary(v["B/op"]), AllocsPerOp: summary(v["allocs/op"])}
		r.NsRange = r.NsPerOp.PctRangeString()
		if r.Runs < 6 {
			r.NsRange = "n/a" // benchmath's interval needs 6 runs or more at 95%
		}
		results = append(results, r)
	}
	return results, nil
}

func quoteArgs(args []string) string {
	var q []string
	for _, a := range args {
		if strings.ContainsAny(a, "^$ *") {
			a = "'" + a + "'"
		}
		q = append(q, a)
	}
	return strings.Join(q, " ")
}
