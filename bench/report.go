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

// Summary of one pair over the rounds.
type pairSummary struct {
	Ratios                     []float64
	Ratio                      float64 // median of Ratios
	OursQPS, UpQPS             float64 // medians
	OursP50, OursP99           time.Duration
	UpP50, UpP99               time.Duration
	OursOfCeiling, UpOfCeiling float64 // medians of the per-round fractions of whoami's QPS
	Lost                       int
	OursCPU, UpCPU             time.Duration // CPU per query, medians
	CPURatios                  []float64     // ours' CPU per query / upstream's, per round
	CPURatio                   float64       // median of CPURatios
	OursAllocs, UpAllocs       float64       // heap allocations per query, medians
	OursBytes, UpBytes         float64       // heap bytes allocated per query, medians

	// Against k8s_gateway, where it ran.
	Peer                      bool
	PeerQPS                   float64
	PeerP50, PeerP99, PeerCPU time.Duration
	PeerRatios, PeerCPURatios []float64 // ours / k8s_gateway, per round
	PeerRatio, PeerCPURatio   float64
	PeerOverUpstream          float64 // k8s_gateway / upstream QPS, median of the rounds
}

func (p Pair) summary(whoami []perf) pairSummary {
	var s pairSummary
	var oq, uq, oc, uc []float64
	var oa, ua, ob, ub []float64
	var o50, o99, u50, u99, ocpu, ucpu []time.Duration
	for i := range min(len(p.Ours.Runs), len(p.Upstream.Runs)) {
		o, u := p.Ours.Runs[i], p.Upstream.Runs[i]
		s.Ratios = append(s.Ratios, o.QPS/u.QPS)
		ocpu, ucpu = append(ocpu, o.CPUPerQuery), append(ucpu, u.CPUPerQuery)
		if u.CPUPerQuery > 0 {
			s.CPURatios = append(s.CPURatios, float64(o.CPUPerQuery)/float64(u.CPUPerQuery))
		}
		oq, uq = append(oq, o.QPS), append(uq, u.QPS)
		oa, ua, ob, ub = append(oa, o.AllocsPerQuery), append(ua, u.AllocsPerQuery), append(ob, o.BytesPerQuery), append(ub, u.BytesPerQuery)
		o50, o99 = append(o50, o.P50), append(o99, o.P99)
		u50, u99 = append(u50, u.P50), append(u99, u.P99)
		if i < len(whoami) && whoami[i].QPS > 0 {
			oc, uc = append(oc, o.QPS/whoami[i].QPS), append(uc, u.QPS/whoami[i].QPS)
		}
		s.Lost += o.Lost + u.Lost
	}
	s.Ratio, s.OursQPS, s.UpQPS = Median(s.Ratios), Median(oq), Median(uq)
	s.OursP50, s.OursP99, s.UpP50, s.UpP99 = Median(o50), Median(o99), Median(u50), Median(u99)
	s.OursOfCeiling, s.UpOfCeiling = Median(oc), Median(uc)
	s.OursCPU, s.UpCPU, s.CPURatio = Median(ocpu), Median(ucpu), Median(s.CPURatios)
	s.OursAllocs, s.UpAllocs, s.OursBytes, s.UpBytes = Median(oa), Median(ua), Median(ob), Median(ub)
	if p.Peer != nil {
		s.Peer = true
		var q, overUp []float64
		var p50, p99, cpu []time.Duration
		for i, g := range p.Peer.Runs {
			q, p50, p99, cpu = append(q, g.QPS), append(p50, g.P50), append(p99, g.P99), append(cpu, g.CPUPerQuery)
			if i < len(p.Ours.Runs) {
				s.PeerRatios = append(s.PeerRatios, p.Ours.Runs[i].QPS/g.QPS)
				if g.CPUPerQuery > 0 {
					s.PeerCPURatios = append(s.PeerCPURatios, float64(p.Ours.Runs[i].CPUPerQuery)/float64(g.CPUPerQuery))
				}
			}
			if i < len(p.Upstream.Runs) {
				overUp = append(overUp, g.QPS/p.Upstream.Runs[i].QPS)
			}
		}
		s.PeerQPS, s.PeerP50, s.PeerP99, s.PeerCPU = Median(q), Median(p50), Median(p99), Median(cpu)
		s.PeerRatio, s.PeerCPURatio, s.PeerOverUpstream = Median(s.PeerRatios), Median(s.PeerCPURatios), Median(overUp)
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
	var rss, files, heap []int64
	var ready []time.Duration
	out := scaleSummary{Stable: true}
	for i, x := range s.Samples {
		rss, files, heap, ready = append(rss, x.RSS), append(files, x.RSSFile), append(heap, x.HeapInuse), append(ready, x.ToReady)
		if i == 0 {
			out.Watches = x.Watches
		} else if !maps.Equal(x.Watches, out.Watches) {
			out.Stable = false
		}
	}
	if len(rss) > 0 {
		out.RSS, out.RSSFile, out.Heap, out.ToReady = Median(rss), Median(files), Median(heap), Median(ready)
	}
	return out
}

type propSummary struct {
	N             int
	P50, P99, Max time.Duration
	WriteP50      time.Duration
}

func (p Propagation) summary() propSummary {
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
		s := p.summary(r.Whoami)
		ts = append(ts, target{
			What: "QPS ratio ours/upstream, " + p.Title,
			Want: fmt.Sprintf("≥ %.2f", p.Target),
			Got:  fmt.Sprintf("%.3f", s.Ratio),
			Met:  s.Ratio >= p.Target,
		})
		if s.Peer {
			ts = append(ts, target{What: "QPS ratio ours/k8s_gateway, " + p.Title, Want: "> 1",
				Got: fmt.Sprintf("%.3f", s.PeerRatio), Met: s.PeerRatio > 1})
		}
	}
	if len(r.SmallWorld.Setups) == 3 {
		up, ours := r.SmallWorld.Setups[0].summary(), r.SmallWorld.Setups[1].summary()
		rr := float64(ours.RSS) / float64(up.RSS)
		ts = append(ts, target{What: fmt.Sprintf("RSS after sync vs upstream, small world (%d Services), %s", r.SmallWorld.Services, r.SmallWorld.Setups[1].Name),
			Want: "≤ 1.05×", Got: fmt.Sprintf("%.3f×", rr), Met: rr <= 1.05})
	}
	if len(r.Scale.Setups) == 3 {
		up := r.Scale.Setups[0].summary()
		for _, st := range r.Scale.Setups[1:] {
			s := st.summary()
			rr := float64(s.RSS) / float64(up.RSS)
			hr := float64(s.Heap) / float64(up.Heap)
			ts = append(ts,
				target{What: "RSS after sync vs upstream, " + st.Name, Want: "≤ 1.05×", Got: fmt.Sprintf("%.3f×", rr), Met: rr <= 1.05},
				target{What: "Go heap in use after sync vs upstream, " + st.Name, Want: "≤ 1.05×", Got: fmt.Sprintf("%.3f×", hr), Met: hr <= 1.05},
				target{What: "watches on the apiserver, " + st.Name, Want: "= upstream's " + watchString(up.Watches),
					Got: watchString(s.Watches), Met: maps.Equal(s.Watches, up.Watches) && len(up.Watches) > 0},
			)
		}
	}
	for _, p := range r.Propagation {
		if p.Name != "cluster zone not cached" {
			continue
		}
		s := p.summary()
		ts = append(ts, target{What: "propagation p99, " + p.Name, Want: "< 1 s",
			Got: fmt.Sprintf("%v (%d flips, %d timed out)", roundDur(s.P99), s.N, p.Timeouts), Met: s.P99 < time.Second && p.Timeouts == 0})
	}
	return ts
}

const upstreamVersion = "v1.15.0"

func floats(v []float64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf("%.3f", x))
	}
	return strings.Join(s, ", ")
}

func metWord(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func ratioCell(v, up float64, i int) string {
	if i == 0 || up == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f×", v/up)
}

func watchString(w map[string]int) string {
	if len(w) == 0 {
		return "none"
	}
	var parts []string
	total := 0
	for _, k := range slices.Sorted(maps.Keys(w)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, w[k]))
		total += w[k]
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
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

//go:embed report.md.tmpl
var reportTemplate string

var report = template.Must(template.New("report").Funcs(template.FuncMap{
	"met":     metWord,
	"floats":  floats,
	"dur":     roundDur,
	"pct":     func(f float64) float64 { return 100 * f },
	"mib":     mib,
	"watches": watchString,
	"join":    strings.Join,
	"trim":    strings.TrimSpace,
}).Parse(reportTemplate))

// pairRow is a Pair as the report shows it.
type pairRow struct {
	P      Pair
	S      pairSummary
	Target string
}

// scaleRow is a ScaleSetup as the report shows it, against the first
// setup (upstream).
type scaleRow struct {
	Name                            string
	S                               scaleSummary
	VsRSS, VsHeap, VsReady          string
	EveryRSS, EveryHeap, EveryReady string
}

// Query is the question dnsperf repeats, for the report.
func (e endpoint) Query() string { return e.query() }

// Summary is p summarized, for the report.
func (p Propagation) Summary() propSummary { return p.summary() }

// Markdown renders the report (report.md.tmpl).
func (r *Results) Markdown(o ReportOptions) (string, error) {
	rows := func(pairs []Pair) []pairRow {
		var out []pairRow
		for _, p := range pairs {
			s := p.summary(r.Whoami)
			t := "—"
			if p.Target > 0 {
				t = fmt.Sprintf("≥ %.2f %s", p.Target, metWord(s.Ratio >= p.Target))
			}
			out = append(out, pairRow{P: p, S: s, Target: t})
		}
		return out
	}
	data := map[string]any{
		"R": r, "O": o, "Upstream": upstreamVersion, "GatewayVersion": cluster.K8sGatewayVersion,
		"Wall":       r.Ended.Sub(r.Started).Round(time.Second),
		"Targets":    r.targets(),
		"Throughput": rows(r.Throughput),
		"Saturated":  rows(r.Saturated),
		"Processes":  2*len(r.Throughput) + 1,
		"Small":      scaleRows(r.SmallWorld.Setups),
		"Scale":      scaleRows(r.Scale.Setups),
	}
	if len(r.Whoami) > 0 {
		var w perf
		var q []float64
		var p50, p99, cpu []time.Duration
		for _, x := range r.Whoami {
			q, p50, p99, cpu = append(q, x.QPS), append(p50, x.P50), append(p99, x.P99), append(cpu, x.CPUPerQuery)
		}
		w.QPS, w.P50, w.P99, w.CPUPerQuery = Median(q), Median(p50), Median(p99), Median(cpu)
		data["Whoami"] = w
	}
	var b strings.Builder
	err := report.Execute(&b, data)
	return b.String(), err
}

func scaleRows(setups []ScaleSetup) []scaleRow {
	var out []scaleRow
	var up scaleSummary
	for i, st := range setups {
		s := st.summary()
		if i == 0 {
			up = s
		}
		row := scaleRow{Name: st.Name, S: s, VsRSS: ratioCell(float64(s.RSS), float64(up.RSS), i),
			VsHeap: ratioCell(float64(s.Heap), float64(up.Heap), i), VsReady: ratioCell(float64(s.ToReady), float64(up.ToReady), i)}
		var rs, hs, ts []string
		for _, x := range st.Samples {
			rs, hs, ts = append(rs, fmt.Sprintf("%.1f", mib(x.RSS))), append(hs, fmt.Sprintf("%.1f", mib(x.HeapInuse))), append(ts, x.ToReady.Round(time.Millisecond).String())
		}
		row.EveryRSS, row.EveryHeap, row.EveryReady = strings.Join(rs, ", "), strings.Join(hs, ", "), strings.Join(ts, ", ")
		out = append(out, row)
	}
	return out
}
