package bench

import (
	"slices"
	"time"
)

// number is what Median and Percentile summarize: counts, bytes, ratios,
// durations.
type number interface {
	~int | ~int64 | ~float64
}

// Median of xs (the mean of the two middle values for an even count); 0 for
// none.
func Median[T number](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Percentile is the nearest-rank q-quantile of xs; 0 for none.
func Percentile[T number](xs []T, q float64) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// roundDur keeps three significant digits or so.
func roundDur(d time.Duration) time.Duration {
	for _, unit := range []time.Duration{10 * time.Second, time.Second, 10 * time.Millisecond, time.Millisecond} {
		if d >= unit {
			return d.Round(unit / 100)
		}
	}
	return d.Round(time.Microsecond)
}

// medianOf is the median of f over runs.
func medianOf[T number](runs []perf, f func(perf) T) T {
	xs := make([]T, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	return Median(xs)
}

// ratios are the per-round ratios of two sides and their median.
type ratios struct {
	Rounds []float64
	Median float64
}

// ratiosOf is f(a[i]) / f(b[i]) for each round both have where f(b[i]) is
// not 0.
func ratiosOf[T number](a, b []perf, f func(perf) T) ratios {
	var r ratios
	for i := range min(len(a), len(b)) {
		if d := float64(f(b[i])); d != 0 {
			r.Rounds = append(r.Rounds, float64(f(a[i]))/d)
		}
	}
	r.Median = Median(r.Rounds)
	return r
}
