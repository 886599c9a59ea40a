package bench

import (
	_ "embed"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/warpdns/warpdns/test/cluster"
)

// ReportOptions are what the report says about how it was made.
type ReportOptions struct {
	Command    string // the command that produced it (e.g. make bench)
	Invocation string // what that command ran, if different
	Chart      string // the chart's file name, relative to the report; empty: none
	Findings   string // markdown included as the profiling/findings section
}

func qps(x perf) float64       { return x.QPS }
func cpu(x perf) time.Duration { return x.CPUPerQuery }

// sideSummary is one side over the rounds: medians.
type sideSummary struct {
	QPS           float64
	P50, P99, CPU time.Duration // CPU per query
	Allocs, Bytes float64       // heap allocations and bytes allocated per query
	OfCeiling     float64       // of the per-round fractions of whoami's QPS
}

func summarize(runs, whoami []perf) sideSummary {
	return sideSummary{
		QPS: medianOf(runs, qps), CPU: medianOf(runs, cpu),
		P50:       medianOf(runs, func(x perf) time.Duration { return x.P50 }),
		P99:       medianOf(runs, func(x perf) time.Duration { return x.P99 }),
		Allocs:    medianOf(runs, func(x perf) float64 { return x.AllocsPerQuery }),
		Bytes:     medianOf(runs, func(x perf) float64 { return x.BytesPerQuery }),
		OfCeiling: ratiosOf(runs, whoami, qps).Median,
	}
}

// pairSummary is a Pair over the rounds.
type pairSummary struct {
	Ours, Up           sideSummary
	Peer               *sideSummary // k8s_gateway, where it ran
	QPSRatio, CPURatio ratios       // ours / upstream
	Met                bool         // QPSRatio reaches the Pair's target
	Target             string       // the target and whether it is met, or —

	PeerQPSRatio, PeerCPURatio ratios // ours / k8s_gateway
	PeerOverUp                 ratios // k8s_gateway / upstream QPS

	OursAA, UpAA *ratios // QPS of the first process of a side / its twin's, where there are twins

	// Where the Pair has an RSSBound: the sides' RSS at the end of the
	// rounds (medians), and the median of the per-round excess of ours.
	OursRSS, UpRSS, RSSOver int64
	RSSMet                  bool
}

// Summary is p over its rounds; whoami's are the ceiling's.
func (p Pair) Summary(whoami []perf) pairSummary {
	o, u := p.Ours.perRound(), p.Upstream.perRound()
	s := pairSummary{Ours: summarize(o, whoami), Up: summarize(u, whoami),
		QPSRatio: ratiosOf(o, u, qps), CPURatio: ratiosOf(o, u, cpu), Target: "—"}
	if p.Target > 0 {
		s.Met = s.QPSRatio.Median >= p.Target
		s.Target = fmt.Sprintf("≥ %.2f %s", p.Target, metWord(s.Met))
	}
	if p.Ours.Twin != nil {
		oursAA, upAA := ratiosOf(p.Ours.Runs, p.Ours.Twin.Runs, qps), ratiosOf(p.Upstream.Runs, p.Upstream.Twin.Runs, qps)
		s.OursAA, s.UpAA = &oursAA, &upAA
	}
	if p.RSSBound > 0 {
		over := make([]int64, min(len(o), len(u)))
		for i := range over {
			over[i] = o[i].RSS - u[i].RSS
		}
		rss := func(x perf) int64 { return x.RSS }
		s.OursRSS, s.UpRSS, s.RSSOver = medianOf(o, rss), medianOf(u, rss), Median(over)
		s.RSSMet = s.RSSOver <= p.RSSBound
	}
	if p.Peer != nil {
		g := p.Peer.Runs
		peer := summarize(g, nil)
		s.Peer, s.PeerQPSRatio, s.PeerCPURatio, s.PeerOverUp = &peer, ratiosOf(o, g, qps), ratiosOf(o, g, cpu), ratiosOf(g, u, qps)
	}
	return s
}

type scaleSummary struct {
	RSS, RSSFile, Heap int64
	ToReady            time.Duration
	Watches            map[string]int
	Stable             bool // every start-up opened the same watches
}

func (s ScaleSetup) summary() scaleSummary {
	out := scaleSummary{Stable: true}
	var rss, files, heap []int64
	var ready []time.Duration
	for i, x := range s.Samples {
		rss, files, heap, ready = append(rss, x.RSS), append(files, x.RSSFile), append(heap, x.HeapInuse), append(ready, x.ToReady)
		if i == 0 {
			out.Watches = x.Watches
		} else if !maps.Equal(x.Watches, out.Watches) {
			out.Stable = false
		}
	}
	out.RSS, out.RSSFile, out.Heap, out.ToReady = Median(rss), Median(files), Median(heap), Median(ready)
	return out
}

type propSummary struct {
	N                       int
	P50, P99, Max, WriteP50 time.Duration
}

// Summary is p's latencies summarized.
func (p Propagation) Summary() propSummary {
	return propSummary{N: len(p.Latencies), P50: Percentile(p.Latencies, 0.50), P99: Percentile(p.Latencies, 0.99),
		Max: Percentile(p.Latencies, 1), WriteP50: Percentile(p.Writes, 0.50)}
}

// target is one line of the summary.
type target struct {
	What, Want, Got string
	Met             bool
}

func (r *Results) targets() []target {
	var ts []target
	for _, p := range slices.Concat(r.Throughput, r.Saturated) {
		if p.Target == 0 {
			continue
		}
		s := p.Summary(r.Whoami)
		ts = append(ts, target{"QPS ratio ours/upstream, " + p.Title, fmt.Sprintf("≥ %.2f", p.Target), fmt.Sprintf("%.3f", s.QPSRatio.Median), s.Met})
		if p.RSSBound > 0 {
			ts = append(ts, target{"RSS at the end of each round, ours − upstream (median), " + p.Title,
				fmt.Sprintf("≤ %.0f MiB (headlessonly's answer cache bound)", mib(p.RSSBound)), fmt.Sprintf("%.1f MiB", mib(s.RSSOver)), s.RSSMet})
		}
		if s.Peer != nil {
			peer := s.PeerQPSRatio.Median
			ts = append(ts, target{"QPS ratio ours/k8s_gateway, " + p.Title, "> 1", fmt.Sprintf("%.3f", peer), peer > 1})
		}
	}
	atMost105 := func(what string, v, up int64) target {
		ratio := float64(v) / float64(up)
		return target{what, "≤ 1.05×", fmt.Sprintf("%.3f×", ratio), ratio <= 1.05}
	}
	if small := r.SmallWorld.Setups; len(small) == 3 {
		what := fmt.Sprintf("RSS after sync vs upstream, small world (%d Services), %s", r.SmallWorld.Services, small[1].Name)
		ts = append(ts, atMost105(what, small[1].summary().RSS, small[0].summary().RSS))
	}
	if len(r.Scale.Setups) == 3 {
		up := r.Scale.Setups[0].summary()
		for _, st := range r.Scale.Setups[1:] {
			s := st.summary()
			ts = append(ts,
				atMost105("RSS after sync vs upstream, "+st.Name, s.RSS, up.RSS),
				atMost105("Go heap in use after sync vs upstream, "+st.Name, s.Heap, up.Heap),
				target{"watches on the apiserver, " + st.Name, "= upstream's " + watchString(up.Watches),
					watchString(s.Watches), maps.Equal(s.Watches, up.Watches) && len(up.Watches) > 0})
		}
	}
	for _, p := range r.Propagation {
		if p.Name == "cluster zone not cached" {
			s := p.Summary()
			ts = append(ts, target{"propagation p99, " + p.Name, "< 1 s",
				fmt.Sprintf("%v (%d flips, %d timed out)", roundDur(s.P99), s.N, p.Timeouts), s.P99 < time.Second && p.Timeouts == 0})
		}
	}
	return ts
}

// TargetsText is the summary as plain lines, for the terminal.
func (r *Results) TargetsText() string {
	var b strings.Builder
	for _, t := range r.targets() {
		mark := "met   "
		if !t.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(&b, "%s  %s: %s (target %s)\n", mark, t.What, t.Got, t.Want)
	}
	return b.String()
}

func metWord(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// joinf formats each of xs with f, comma-separated.
func joinf[T any](xs []T, f func(T) string) string {
	var s []string
	for _, x := range xs {
		s = append(s, f(x))
	}
	return strings.Join(s, ", ")
}

func watchString(w map[string]int) string {
	if len(w) == 0 {
		return "none"
	}
	total := 0
	for _, n := range w {
		total += n
	}
	parts := joinf(slices.Sorted(maps.Keys(w)), func(k string) string { return fmt.Sprintf("%s %d", k, w[k]) })
	return fmt.Sprintf("%d (%s)", total, parts)
}

//go:embed report.md.tmpl
var reportTemplate string

var report = template.Must(template.New("report").Funcs(template.FuncMap{
	"met":     metWord,
	"floats":  func(v []float64) string { return joinf(v, func(x float64) string { return fmt.Sprintf("%.3f", x) }) },
	"dur":     roundDur,
	"pct":     func(f float64) float64 { return 100 * f },
	"mib":     mib,
	"watches": watchString,
	"join":    strings.Join,
	"trim":    strings.TrimSpace,
	"redone": func(pairs []Pair) string {
		return joinf(pairs, func(p Pair) string { return fmt.Sprintf("%s %d", p.Key, p.Redone) })
	},
}).Parse(reportTemplate))

// scaleRow is a ScaleSetup as the report shows it, against the first
// setup (upstream).
type scaleRow struct {
	ScaleSetup
	S                               scaleSummary
	VsRSS, VsHeap, VsReady          string
	EveryRSS, EveryHeap, EveryReady string
}

func scaleRows(setups []ScaleSetup) []scaleRow {
	var rows []scaleRow
	for i, st := range setups {
		s := st.summary()
		vs := func(v, up float64) string {
			if i == 0 || up == 0 {
				return "—"
			}
			return fmt.Sprintf("%.3f×", v/up)
		}
		up := s
		if i > 0 {
			up = rows[0].S
		}
		rows = append(rows, scaleRow{ScaleSetup: st, S: s,
			VsRSS: vs(float64(s.RSS), float64(up.RSS)), VsHeap: vs(float64(s.Heap), float64(up.Heap)), VsReady: vs(float64(s.ToReady), float64(up.ToReady)),
			EveryRSS:   joinf(st.Samples, func(x ScaleSample) string { return fmt.Sprintf("%.1f", mib(x.RSS)) }),
			EveryHeap:  joinf(st.Samples, func(x ScaleSample) string { return fmt.Sprintf("%.1f", mib(x.HeapInuse)) }),
			EveryReady: joinf(st.Samples, func(x ScaleSample) string { return x.ToReady.Round(time.Millisecond).String() }),
		})
	}
	return rows
}

// processes counts the coredns processes of pairs.
func processes(pairs []Pair) int {
	n := 0
	for i := range pairs {
		n += len(pairs[i].sides())
	}
	return n
}

// Markdown renders the report (report.md.tmpl).
func (r *Results) Markdown(o ReportOptions) (string, error) {
	data := map[string]any{
		"R": r, "O": o, "Upstream": cluster.UpstreamCoreDNS, "GatewayVersion": cluster.K8sGatewayVersion,
		"Wall":      r.Ended.Sub(r.Started).Round(time.Second),
		"Targets":   r.targets(),
		"Processes": processes(r.Throughput) + 1,
		"Small":     scaleRows(r.SmallWorld.Setups),
		"Scale":     scaleRows(r.Scale.Setups),
	}
	if len(r.Whoami) > 0 {
		data["Whoami"] = summarize(r.Whoami, nil)
	}
	var b strings.Builder
	err := report.Execute(&b, data)
	return b.String(), err
}
