package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
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
}

func (p Pair) summary(whoami []perf) pairSummary {
	var s pairSummary
	var oq, uq, oc, uc []float64
	var oa, ua, ob, ub []float64
	var o50, o99, u50, u99, ocpu, ucpu []time.Duration
	for i := range min(len(p.OursRuns), len(p.UpstreamRuns)) {
		o, u := p.OursRuns[i], p.UpstreamRuns[i]
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
	s.Ratio, s.OursQPS, s.UpQPS = median(s.Ratios), median(oq), median(uq)
	s.OursP50, s.OursP99, s.UpP50, s.UpP99 = medianDur(o50), medianDur(o99), medianDur(u50), medianDur(u99)
	s.OursOfCeiling, s.UpOfCeiling = median(oc), median(uc)
	s.OursCPU, s.UpCPU, s.CPURatio = medianDur(ocpu), medianDur(ucpu), median(s.CPURatios)
	s.OursAllocs, s.UpAllocs, s.OursBytes, s.UpBytes = median(oa), median(ua), median(ob), median(ub)
	return s
}

type scaleSummary struct {
	RSS, Heap int64
	ToReady   time.Duration
	Watches   map[string]int
	Stable    bool // every start-up opened the same watches
}

func (s ScaleSetup) summary() scaleSummary {
	var rss, heap []int64
	var ready []time.Duration
	out := scaleSummary{Stable: true}
	for i, x := range s.Samples {
		rss, heap, ready = append(rss, x.RSS), append(heap, x.HeapInuse), append(ready, x.ToReady)
		if i == 0 {
			out.Watches = x.Watches
		} else if !maps.Equal(x.Watches, out.Watches) {
			out.Stable = false
		}
	}
	if len(rss) > 0 {
		out.RSS, out.Heap, out.ToReady = medianInt(rss), medianInt(heap), medianDur(ready)
	}
	return out
}

type propSummary struct {
	N             int
	P50, P99, Max time.Duration
	WriteP50      time.Duration
}

func (p Propagation) summary() propSummary {
	s := slices.Clone(p.Latencies)
	slices.Sort(s)
	w := slices.Clone(p.Writes)
	slices.Sort(w)
	out := propSummary{N: len(s)}
	if len(s) > 0 {
		out.P50, out.P99, out.Max = pctDur(s, 0.50), pctDur(s, 0.99), s[len(s)-1]
	}
	if len(w) > 0 {
		out.WriteP50 = pctDur(w, 0.50)
	}
	return out
}

// target is one line of the summary.
type target struct {
	What, Want, Got string
	Met             bool
}

func (r *Results) targets() []target {
	var ts []target
	for _, p := range r.Throughput {
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

// Markdown renders the report.
func (r *Results) Markdown(o ReportOptions) string {
	var b strings.Builder
	pf := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cfg := r.Config

	pf("# Benchmarks: ours against upstream CoreDNS %s\n\n", upstreamVersion)
	if r.Smoke {
		pf("> **Smoke run**: every phase ran for a moment only; the numbers mean nothing.\n\n")
	}
	pf("Generated by `%s` on %s (%s of wall time). Every number below comes from that one run: ours and upstream CoreDNS %s (built from the Go module proxy with `go install github.com/coredns/coredns@%s`) measured in the same run, on the same machine, against the same local kube-apiserver, alternating. ", o.Command, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Ended.Sub(r.Started).Round(time.Second), upstreamVersion, upstreamVersion)
	pf("The machine is small and shared, so what counts are the ratios: each is the median of the per-round ratios of %d alternating rounds (ours first in odd rounds, upstream first in even ones: on this machine the side that runs first in a pair tends to come out a few percent worse, and an even number of rounds balances that); absolute numbers are for orientation only.\n\n", cfg.Rounds)

	pf("## Targets\n\n| what | target | measured | |\n| --- | --- | --- | --- |\n")
	for _, t := range r.targets() {
		mark := "met"
		if !t.Met {
			mark = "**missed**"
		}
		pf("| %s | %s | %s | %s |\n", t.What, t.Want, t.Got, mark)
	}
	pf("\n")

	// Throughput.
	pf("## 1. Throughput and latency\n\n")
	if o.Chart != "" {
		pf("![QPS and p99 latency per setup](%s)\n\n", o.Chart)
	}
	pf("dnsperf, UDP with EDNS0, one query repeated, %d sockets with %d queries in flight (fixed concurrency), %v a round, %d rounds. ", cfg.Clients, cfg.Outstanding, cfg.Round, cfg.Rounds)
	pf("Each side of each comparison is a coredns process of its own (%d in all, with the ceiling, against the same kube-apiserver), so both sides of a pair have the same history; each measured run follows an unrecorded %v warm-up run against the same server. ", 2*len(r.Throughput)+1, cfg.Warmup)
	pf("QPS and latencies are medians over the rounds; latency percentiles come from dnsperf's per-response latencies (`-v`). ")
	pf("\"of whoami\" is the fraction of the QPS that upstream's *whoami* plugin (a Corefile with nothing else) reached in the same round: the ceiling of this machine, this load generator and CoreDNS's server loop.\n\n")
	pf("| setup | ours QPS | upstream QPS | QPS ratio (median) | QPS ratios per round | target | CPU per query, ours / upstream | CPU ratio (median) | allocations per query, ours / upstream | bytes allocated per query, ours / upstream | ours p50 / p99 | upstream p50 / p99 | ours / upstream of whoami |\n")
	pf("| --- | ---: | ---: | ---: | --- | --- | --- | ---: | --- | --- | --- | --- | --- |\n")
	for _, p := range r.Throughput {
		s := p.summary(r.Whoami)
		tgt := "—"
		if p.Target > 0 {
			tgt = fmt.Sprintf("≥ %.2f %s", p.Target, metWord(s.Ratio >= p.Target))
		}
		pf("| %s | %.0f | %.0f | **%.3f** | %s | %s | %v / %v | %.3f | %.1f / %.1f | %.0f / %.0f | %v / %v | %v / %v | %.0f%% / %.0f%% |\n", p.Title, s.OursQPS, s.UpQPS, s.Ratio, floats(s.Ratios), tgt,
			roundDur(s.OursCPU), roundDur(s.UpCPU), s.CPURatio, s.OursAllocs, s.UpAllocs, s.OursBytes, s.UpBytes,
			roundDur(s.OursP50), roundDur(s.OursP99), roundDur(s.UpP50), roundDur(s.UpP99), 100*s.OursOfCeiling, 100*s.UpOfCeiling)
	}
	if len(r.Whoami) > 0 {
		var q []float64
		var p50, p99, cpu []time.Duration
		for _, w := range r.Whoami {
			q, p50, p99, cpu = append(q, w.QPS), append(p50, w.P50), append(p99, w.P99), append(cpu, w.CPUPerQuery)
		}
		pf("| ceiling: upstream *whoami* | | %.0f | | | | — / %v | | | | | %v / %v | |\n", median(q), roundDur(medianDur(cpu)), roundDur(medianDur(p50)), roundDur(medianDur(p99)))
	}
	pf("\nCPU per query is the server process's CPU time (user + system, from /proc/PID/stat) during the round divided by the queries it answered; the CPU ratio (ours ÷ upstream, per round, median; below 1 is cheaper) is the steadier measure of what a query costs, since other work on the machine moves QPS far more than it moves CPU per query. Allocations and bytes per query are the Go heap allocations of the whole server process during the round (`go_memstats_mallocs_total` and `go_memstats_alloc_bytes_total` from its prometheus plugin) divided by the queries it answered: they do not depend on the machine's load at all, so they show what each side does per query even where the timings are noisy. CPU ratios per round:\n\n")
	for _, p := range r.Throughput {
		pf("- %s: %s\n", p.Title, floats(p.summary(r.Whoami).CPURatios))
	}
	pf("\nWhat each side was asked:\n\n")
	for _, p := range r.Throughput {
		pf("- %s: ours `%s` (%s), upstream `%s` (%s)\n", p.Title, p.Ours.query(), p.Ours.Server, p.Upstream.query(), p.Upstream.Server)
	}
	pf("\nThe upstream side of the VPC path is the same Service published headless (`api-headless`, same port, same %d endpoints): the answer upstream gives is the one ours gives for `stg-api` on the VPC listener. For the targets, upstream runs Corefile.example itself with the `envalias` and `headlessonly` stanzas taken out (the same server block, listeners, *acl* and *cache*), so that the ratio is what our two plugins cost; the last VPC row compares with upstream's stock Corefile instead, and so also counts what Corefile.example's *acl* and second listener (upstream plugins, configured for the VPC listener's security) cost. Before measuring, each query was asked once and the answers compared (ours and upstream must return the same records, %d of them):\n\n", cfg.Endpoints, cfg.Endpoints)
	for _, s := range r.ThroughputSanity {
		pf("- %s\n", s)
	}
	pf("\n")

	// Scale.
	sc := r.Scale
	pf("## 2. Memory and startup at scale\n\n")
	pf("%d Services (ClusterIP, one port) with one EndpointSlice of %d ready endpoints each (%d endpoints) in %d namespaces, created through the API with 32 parallel workers in %v. ", sc.Services, cfg.EndpointsPerService, sc.Endpoints, sc.Namespaces, sc.Populate.Round(time.Second))
	pf("Each setup was started %d times, one at a time, alternating the order. Time to ready is from the process start to the first 200 from the *ready* plugin (the kubernetes plugin has synced); then the bench waits until the watches it holds on the apiserver have not changed for 2 s, and reads RSS (`VmRSS` in /proc/PID/status) and the Go heap (`go_memstats_heap_inuse_bytes` from the prometheus plugin), five readings 200 ms apart, median. Watches are `apiserver_longrunning_requests{verb=\"WATCH\"}` minus those open before the start. Medians over the start-ups:\n\n", cfg.ScaleRounds)
	pf("| setup | RSS | vs upstream | Go heap in use | vs upstream | time to ready | vs upstream | watches |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	var up scaleSummary
	for i, st := range sc.Setups {
		s := st.summary()
		if i == 0 {
			up = s
		}
		w := watchString(s.Watches)
		if !s.Stable {
			w += " (varied between start-ups)"
		}
		pf("| %s | %.1f MiB | %s | %.1f MiB | %s | %v | %s | %s |\n", st.Name, mib(s.RSS), ratioCell(float64(s.RSS), float64(up.RSS), i), mib(s.Heap), ratioCell(float64(s.Heap), float64(up.Heap), i),
			s.ToReady.Round(time.Millisecond), ratioCell(float64(s.ToReady), float64(up.ToReady), i), w)
	}
	pf("\nEvery start-up:\n\n| setup | RSS | Go heap | time to ready |\n| --- | --- | --- | --- |\n")
	for _, st := range sc.Setups {
		var rs, hs, ts []string
		for _, x := range st.Samples {
			rs, hs, ts = append(rs, fmt.Sprintf("%.1f", mib(x.RSS))), append(hs, fmt.Sprintf("%.1f", mib(x.HeapInuse))), append(ts, x.ToReady.Round(time.Millisecond).String())
		}
		pf("| %s | %s MiB | %s MiB | %s |\n", st.Name, strings.Join(rs, ", "), strings.Join(hs, ", "), strings.Join(ts, ", "))
	}
	pf("\n")

	// Propagation.
	pf("## 3. Propagation of endpoint readiness\n\n")
	pf("The first endpoint of a ClusterIP Service with %d ready endpoints is flipped between ready and not ready by one EndpointSlice Update (as the endpointslice controller writes it); the clock starts when the write is issued and stops at the first answer from the VPC listener (`stg-flip-K.platform.svc.cluster.local A`, envalias + headlessonly) that has exactly the expected pod IPs.\n\n", cfg.Endpoints)
	pf("| Corefile | flips | Services at once | client asks | p50 | p99 | max | timed out | API write p50 |\n| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, p := range r.Propagation {
		s := p.summary()
		asks := "again as soon as an answer comes"
		if p.Poll > 0 {
			asks = fmt.Sprintf("every %v", p.Poll)
		}
		pf("| %s | %d | %d | %s | %v | %v | %v | %d | %v |\n", p.Corefile, s.N, p.Lanes, asks, roundDur(s.P50), roundDur(s.P99), roundDur(s.Max), p.Timeouts, roundDur(s.WriteP50))
	}
	if cfg.CachedFlips == 0 {
		pf("| cluster zone cached | skipped in this run | | | | | | | |\n")
	}
	pf("\nThe first row flips one Service %d times in a row. Corefile.example does not cache the cluster zone (kubeadm's default does not either), so that row is the production setting. ", cfg.Flips)
	pf("The second row turns the cache on for the cluster zone: an answer is then served from the cache until its TTL (30 s, the kubernetes plugin's `ttl 30`) runs out, so a flip shows within 0-30 s, and about 15 s on average; that is the cache doing what it is told, not propagation. There each of %d Services is flipped once, at a random moment of its cache entry's life (a random delay of up to 30 s while its client keeps asking every 100 ms), all at the same time to keep the run short.\n\n", cfg.CachedFlips)

	// Micro.
	pf("## 4. Go micro-benchmarks\n\n`%s` (from the repository root):\n\n", r.Micro.Command)
	pf("| package | benchmark | ns/op | B/op | allocs/op |\n| --- | --- | ---: | ---: | ---: |\n")
	for _, m := range r.Micro.Results {
		pf("| %s | %s | %.1f | %d | %d |\n", m.Package, m.Name, m.NsPerOp, m.BytesPerOp, m.AllocsPerOp)
	}
	pf("\n<details><summary>go test output</summary>\n\n```\n%s\n```\n\n</details>\n\n", strings.TrimSpace(r.Micro.Output))

	if o.Findings != "" {
		pf("## Profiling and findings\n\n%s\n\n", strings.TrimSpace(o.Findings))
	}

	// Machine and commands.
	m := r.Machine
	pf("## Machine, versions, commands\n\n")
	pf("- CPU: %d × %s (`nproc` %d); memory %s; kernel %s\n", m.CPUs, m.CPUModel, m.CPUs, m.MemTotal, m.Kernel)
	pf("- %s; %s\n", m.GoVersion, r.DNSPerfVersion)
	for _, bin := range r.Binaries {
		pf("- %s: `%s`; %s; built %s\n", bin.Name, bin.Version, strings.Join(bin.Modules, ", "), strings.Join(bin.Build, " "))
	}
	pf("- control plane: etcd and kube-apiserver built by test/cluster, on loopback; coredns, dnsperf and the stub upstream behind `forward` on loopback too\n")
	pf("- load average (1, 5, 15 min) when each phase began; this machine has %d cores, and other builds and tests may run on it at the same time:\n\n", m.CPUs)
	pf("  | phase | time | load average |\n  | --- | --- | --- |\n")
	for _, l := range r.Load {
		pf("  | %s | %s | %s |\n", l.Phase, l.At.UTC().Format("15:04:05"), l.LoadAvg)
	}
	pf("\n  The value at *start* is other work, from before any process of the bench ran. During the throughput phase the bench itself keeps about two tasks busy (the coredns under load and dnsperf), so a 1-minute load average well above 2 there means other builds or tests were running at the same time. The measured processes (coredns, dnsperf) ran at nice %d to keep such work from disturbing them, and the ratios are taken between neighbouring runs to cancel out what remains.\n", cfg.Nice)
	pf("\nCommands:\n\n```sh\n%s\n```\n\n", o.Command)
	if o.Invocation != "" && o.Invocation != o.Command {
		pf("(that is `%s`), ", o.Invocation)
	}
	pf("which runs, per round and setup:\n\n```sh\n%s\n```\n\nand for the micro-benchmarks:\n\n```sh\n%s\n```\n", r.DNSPerfCommand, r.Micro.Command)
	pf("\nThe code is in [bench/](../bench); the smoke variant (`go test ./bench/`, part of `make test`) runs each phase for a moment to keep it working.\n")
	return b.String()
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

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDur(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pctDur is the nearest-rank percentile of sorted durations.
func pctDur(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// roundDur keeps three significant digits or so.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
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
