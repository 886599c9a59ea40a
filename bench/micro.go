package bench

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/warpdns/warpdns/test/cluster"
)

// Micro is the plugins' Go benchmarks, as `go test -bench` printed them.
type Micro struct {
	Command string
	Output  string
	Results []MicroResult
}

// MicroResult is one benchmark line.
type MicroResult struct {
	Package     string
	Name        string
	NsPerOp     float64
	BytesPerOp  int64
	AllocsPerOp int64
}

// MicroArgs is the go test command line `make bench` runs for them.
func MicroArgs(benchtime string) []string {
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem"}
	if benchtime != "" {
		args = append(args, "-benchtime", benchtime)
	}
	return append(args, "./plugin/...")
}

func (b *bencher) micro(ctx context.Context) error {
	root, err := cluster.RepoRoot()
	if err != nil {
		return err
	}
	args := MicroArgs(b.cfg.Benchtime)
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
	m.Results = parseBench(m.Output)
	if len(m.Results) == 0 {
		return fmt.Errorf("%s printed no benchmark results:\n%s", m.Command, tail(m.Output, 30))
	}
	return nil
}

// parseBench reads "BenchmarkX-2  123  456 ns/op  78 B/op  9 allocs/op"
// lines; "pkg: path" lines say which package follows.
func parseBench(out string) []MicroResult {
	var res []MicroResult
	pkg := ""
	for _, line := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(p), "github.com/warpdns/warpdns/")
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		r := MicroResult{Package: pkg, Name: f[0]}
		for i := 2; i+1 < len(f); i += 2 {
			v, unit := f[i], f[i+1]
			switch unit {
			case "ns/op":
				r.NsPerOp, _ = strconv.ParseFloat(v, 64)
			case "B/op":
				r.BytesPerOp, _ = strconv.ParseInt(v, 10, 64)
			case "allocs/op":
				r.AllocsPerOp, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		res = append(res, r)
	}
	return res
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
