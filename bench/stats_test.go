package bench

import (
	"math"
	"testing"
	"time"
)

func TestMedianAndPercentile(t *testing.T) {
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("Median odd = %v, want 2", got)
	}
	if got := Median([]time.Duration{4, 1, 3, 2}); got != 2 { // (2+3)/2 in integer nanoseconds
		t.Errorf("Median even = %v, want 2", got)
	}
	if got := Median([]int64(nil)); got != 0 {
		t.Errorf("Median of none = %v, want 0", got)
	}
	xs := []int{5, 1, 4, 2, 3}
	if p50, max := Percentile(xs, 0.5), Percentile(xs, 1); p50 != 3 || max != 5 {
		t.Errorf("Percentile = %v, %v; want 3, 5", p50, max)
	}
}

// TestSummarizeBench reads go test -bench output with benchfmt: one result
// per benchmark over its -count runs, ns/op back from benchfmt's sec/op.
func TestSummarizeBench(t *testing.T) {
	out := "goos: linux\npkg: github.com/warpdns/warpdns/plugin/envalias\n" +
		"BenchmarkRestoreA-2   1000   120 ns/op   48 B/op   3 allocs/op\n" +
		"BenchmarkRestoreA-2   1000   130 ns/op   48 B/op   3 allocs/op\n" +
		"BenchmarkRestoreA-2   1000   125 ns/op   48 B/op   3 allocs/op\nPASS\nok  \tgithub.com/warpdns/warpdns/plugin/envalias\t1.0s\n"
	res, err := summarizeBench([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("got %d results, want 1: %+v", len(res), res)
	}
	r := res[0]
	if r.Package != "plugin/envalias" || r.Name != "BenchmarkRestoreA-2" || r.Runs != 3 ||
		math.Abs(r.NsPerOp.Center-125) > 1e-9 || r.BytesPerOp.Center != 48 || r.AllocsPerOp.Center != 3 {
		t.Errorf("got %+v", r)
	}
}
