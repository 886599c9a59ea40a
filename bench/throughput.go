package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/warpdns/warpdns/test/cluster"
)

// Pair is one comparison: the same answer asked of ours and of upstream
// (and, on the plain-block A row, of k8s_gateway), round after round.
type Pair struct {
	Key, Title     string
	Label          string  // its name in the chart
	Target         float64 // the ratio ours/upstream must reach; 0: none
	Ours, Upstream Side
	Peer           *Side  // k8s_gateway, where it runs
	NoPeer         string // why the row has no k8s_gateway side, where it should
	Rounds         int    // rounds of this comparison; 0: the phase's
	Redone         int    // rounds measured again because of steal (see measureRound)
	// RSSBound, if not 0, is the most that ours' RSS may exceed upstream's
	// at the end of a round (the median over the rounds of the difference).
	RSSBound int64
}

// answerCacheBound is the bound of headlessonly's answer cache, 4 MiB
// (plugin/headlessonly/README.md, "Answer cache"): what the random-case rows
// may add to ours' RSS.
const answerCacheBound = 4 << 20

// Side is one side of a Pair: a coredns of its own, the one query dnsperf
// repeats to it, and its runs, one per round.
type Side struct {
	Server   string // which coredns and Corefile
	bin      string
	corefile corefile
	vpc      bool // asked on Corefile.example's VPC listener
	Name     string
	Type     uint16
	Want     int // records in the answer; 0: any
	// Spellings, if not 0, is how many spellings of Name dnsperf asks in
	// turn, each letter's case chosen at random, as resolvers using 0x20
	// ask (and a client that would defeat a cache keyed on case).
	Spellings int
	Runs      []perf
	// Twin is a second process of the same binary and Corefile, measured
	// in every round too (the stock rows): the side's result for a round is
	// the mean of both (see perRound), and the twins' ratio is what "even"
	// looks like in this run.
	Twin *Side

	srv     *cluster.CoreDNS
	addr    string
	metrics bool // the Corefile has the prometheus plugin, which tells the allocations per query
}

// sideOf makes Sides that ask server (bin with corefile) for a name and
// type and expect want records.
func sideOf(server, bin string, corefile corefile, vpc bool, want int) func(name string, qtype uint16) Side {
	return func(name string, qtype uint16) Side {
		return Side{Server: server, bin: bin, corefile: corefile, vpc: vpc, Name: name, Type: qtype, Want: want}
	}
}

func (p *Pair) sides() []*Side {
	out := []*Side{&p.Ours, &p.Upstream}
	if p.Peer != nil {
		out = append(out, p.Peer)
	}
	if p.Ours.Twin != nil {
		out = append(out, p.Ours.Twin, p.Upstream.Twin)
	}
	return out
}

// twinned is p with a second process on each side (see Side.Twin),
// measured for rounds rounds.
func twinned(p Pair, rounds int) Pair {
	for _, sd := range []*Side{&p.Ours, &p.Upstream} {
		twin := *sd
		twin.Server += ", second process"
		sd.Twin = &twin
	}
	p.Rounds = rounds
	return p
}

// perRound is the side's result per round: its runs, or with a Twin the
// mean of both processes' runs of each round.
func (sd *Side) perRound() []perf {
	if sd.Twin == nil {
		return sd.Runs
	}
	out := make([]perf, min(len(sd.Runs), len(sd.Twin.Runs)))
	for i := range out {
		a, b := sd.Runs[i], sd.Twin.Runs[i]
		out[i] = perf{
			QPS: (a.QPS + b.QPS) / 2, Completed: a.Completed + b.Completed, NoError: a.NoError + b.NoError,
			P50: (a.P50 + b.P50) / 2, P99: (a.P99 + b.P99) / 2, CPUPerQuery: (a.CPUPerQuery + b.CPUPerQuery) / 2,
			AllocsPerQuery: (a.AllocsPerQuery + b.AllocsPerQuery) / 2, BytesPerQuery: (a.BytesPerQuery + b.BytesPerQuery) / 2,
			Steal: max(a.Steal, b.Steal), RSS: (a.RSS + b.RSS) / 2,
		}
	}
	return out
}

// Query is the question dnsperf repeats.
func (sd *Side) Query() string {
	q := strings.TrimSuffix(sd.Name, ".") + " " + dns.TypeToString[sd.Type]
	if sd.Spellings > 0 {
		q += fmt.Sprintf(" (in %d spellings of random case)", sd.Spellings)
	}
	return q
}

// queryFile is dnsperf's query file: the question, or each of its
// spellings on a line. The spellings are the same in every run.
func (sd *Side) queryFile() string {
	line := func(name string) string {
		return strings.TrimSuffix(name, ".") + " " + dns.TypeToString[sd.Type] + "\n"
	}
	if sd.Spellings == 0 {
		return line(sd.Name)
	}
	rng := rand.New(rand.NewPCG(23, 0x20))
	var b strings.Builder
	for range sd.Spellings {
		name := []byte(sd.Name)
		for i, c := range name {
			if 'a' <= c && c <= 'z' && rng.IntN(2) == 0 {
				name[i] = c - 'a' + 'A'
			}
		}
		b.WriteString(line(string(name)))
	}
	return b.String()
}

// randomCase is sd asked in spellings of random case (see Side.Spellings).
func randomCase(sd Side) Side {
	sd.Spellings = caseSpellings
	return sd
}

// caseSpellings is how many: more than a 3 s round at the VPC path's rate
// asks (about 45,000 queries), so that no spelling comes twice in a round,
// and more than the 4096 entries the answer cache was once bounded by.
const caseSpellings = 1 << 16

// The names the comparisons ask (see seedWorld).
const (
	whoamiName  = "whoami.example."
	apiName     = "api.platform.svc.cluster.local."
	apiHeadless = "api-headless.platform.svc.cluster.local."
	apiAlias    = "stg-api.platform.svc.cluster.local."
	tenName     = "ten.platform.svc.cluster.local."
	tenHeadless = "tenhl.platform.svc.cluster.local."
	tenAlias    = "stg-ten.platform.svc.cluster.local."
	srv         = "_http._tcp."
)

func (b *bencher) throughput(ctx context.Context) error {
	n, f := b.cfg.Endpoints, b.files
	ourVPC := sideOf("ours, Corefile.example :5353", b.ours, f.example, true, n)
	ourInCluster := sideOf("ours, Corefile.example :53", b.ours, f.example, false, 1)(apiName, dns.TypeA)
	// Upstream with the same server block, less our two plugins.
	upVPC := sideOf("upstream, Corefile.example without envalias and headlessonly :5353", b.upstream, f.withoutOurs, true, n)
	upInCluster := sideOf("upstream, Corefile.example without envalias and headlessonly :53", b.upstream, f.withoutOurs, false, 1)
	upStock := sideOf("upstream, stock Corefile", b.upstream, f.stock, false, 1)
	pairs := []Pair{
		twinned(Pair{Key: "stock-a", Label: "stock\nA", Title: "stock Corefile, A of a ClusterIP Service", Target: 0.98,
			Ours: sideOf("ours, stock Corefile", b.ours, f.stock, false, 1)(apiName, dns.TypeA), Upstream: upStock(apiName, dns.TypeA)}, b.cfg.StockRounds),
		{Key: "incluster-a", Label: "example :53\nA", Title: "Corefile.example in-cluster listener (:53), A of a ClusterIP Service",
			Ours: ourInCluster, Upstream: upInCluster(apiName, dns.TypeA)},
		{Key: "vpc-a", Label: "VPC path\nA", Title: fmt.Sprintf("VPC path, A (%d ready endpoints)", n), Target: 0.95,
			Ours: ourVPC(apiAlias, dns.TypeA), Upstream: upVPC(apiHeadless, dns.TypeA)},
		{Key: "vpc-srv", Label: "VPC path\nSRV", Title: fmt.Sprintf("VPC path, SRV (%d ready endpoints)", n), Target: 0.95,
			Ours: ourVPC(srv+apiAlias, dns.TypeSRV), Upstream: upVPC(srv+apiHeadless, dns.TypeSRV)},
		// A client varying the case of every query, against upstream's
		// headless answer: the kubernetes plugin makes each of upstream's
		// answers (Corefile.example does not cache the cluster zone), the
		// uncached path. Ours asks the Service's own name, which only
		// headlessonly handles (an alias reaches it in lower case).
		{Key: "vpc-a-case", Label: "VPC A\nrandom case", Title: fmt.Sprintf("VPC path, A (%d ready endpoints), random case", n), Target: 0.95,
			Ours: randomCase(ourVPC(apiName, dns.TypeA)), Upstream: randomCase(upVPC(apiHeadless, dns.TypeA)), RSSBound: answerCacheBound},
		// Both listeners against upstream's stock Corefile: what
		// Corefile.example's acl and its second listener (upstream's
		// plugins) add on top of ours.
		{Key: "incluster-a-stock", Label: ":53 A vs\nup. stock", Title: "Corefile.example in-cluster listener (:53), A of a ClusterIP Service, against upstream's stock Corefile",
			Ours: ourInCluster, Upstream: upStock(apiName, dns.TypeA)},
		{Key: "vpc-a-stock", Label: "VPC A vs\nup. stock", Title: fmt.Sprintf("VPC path, A (%d ready endpoints), against upstream's stock Corefile", n),
			Ours: ourVPC(apiAlias, dns.TypeA), Upstream: sideOf("upstream, stock Corefile", b.upstream, f.stock, false, n)(apiHeadless, dns.TypeA)},
	}
	if pairs = b.only(pairs); len(pairs) == 0 {
		return nil
	}
	ceiling := sideOf("upstream, whoami", b.upstream, f.whoami, false, 0)(whoamiName, dns.TypeA)
	if err := b.compare(ctx, "throughput", b.cfg.Load, b.cfg.Rounds, pairs, &ceiling); err != nil {
		return err
	}
	b.r.Throughput, b.r.Whoami = pairs, ceiling.Runs
	// Propagation uses the VPC-path server; the others stop after this phase.
	for _, p := range pairs {
		if p.Key == "vpc-a" {
			b.exampleServer = p.Ours.srv
		}
	}
	b.stopAllBut(b.exampleServer)
	return nil
}

// saturated compares plain server blocks, nothing in the query path but the
// plugins compared, with dnsperf saturating the server (cfg.Saturated): ours
// answering stg-ten (a ClusterIP Service) on the VPC path, upstream the same
// Service published headless (tenhl), and k8s_gateway the same Service
// annotated for its pod IPs (ten); and the stock Corefile at the same load.
func (b *bencher) saturated(ctx context.Context) error {
	n, f := b.cfg.Endpoints, b.files
	ours := sideOf("ours, plain block", b.ours, f.plainOurs, false, n)
	up := sideOf("upstream, plain block", b.upstream, f.plainUpstream, false, n)
	gateway := sideOf("k8s_gateway, plain block", b.gateway, f.k8sGateway, false, n)(tenName, dns.TypeA)
	pairs := []Pair{
		twinned(Pair{Key: "sat-stock-a", Label: "saturated\nstock A", Title: "saturated, stock Corefile, A of a ClusterIP Service", Target: 0.98,
			Ours:     sideOf("ours, stock Corefile", b.ours, f.stock, false, 1)(apiName, dns.TypeA),
			Upstream: sideOf("upstream, stock Corefile", b.upstream, f.stock, false, 1)(apiName, dns.TypeA)}, b.cfg.StockRounds),
		{Key: "sat-plain-a", Label: "saturated\nplain A", Title: fmt.Sprintf("saturated, plain block, A (%d ready endpoints)", n), Target: 0.95,
			Ours: ours(tenAlias, dns.TypeA), Upstream: up(tenHeadless, dns.TypeA), Peer: &gateway},
		{Key: "sat-plain-srv", Label: "saturated\nplain SRV", Title: fmt.Sprintf("saturated, plain block, SRV (%d ready endpoints)", n), Target: 0.95,
			Ours: ours(srv+tenAlias, dns.TypeSRV), Upstream: up(srv+tenHeadless, dns.TypeSRV)},
		{Key: "sat-plain-a-case", Label: "saturated\nplain A case", Title: fmt.Sprintf("saturated, plain block, A (%d ready endpoints), random case", n), Target: 0.95,
			Ours: randomCase(ours(tenName, dns.TypeA)), Upstream: randomCase(up(tenHeadless, dns.TypeA)), RSSBound: answerCacheBound},
	}
	pairs = b.only(pairs)
	if err := b.compare(ctx, "saturated", b.cfg.Saturated, b.cfg.SatRounds, pairs, nil); err != nil {
		return err
	}
	b.r.Saturated = pairs
	b.stopAllBut(b.exampleServer)
	return nil
}

// only is pairs less those that Config.Only leaves out.
func (b *bencher) only(pairs []Pair) []Pair {
	if len(b.cfg.Only) == 0 {
		return pairs
	}
	return slices.DeleteFunc(pairs, func(p Pair) bool { return !slices.Contains(b.cfg.Only, p.Key) })
}

// compare starts a coredns for each side of each pair, so that every side
// has the same history: measured once a round, idle in between. (One
// upstream process shared by all pairs was busy four times as often as ours
// with the stock Corefile, and came out of each round warmer: a few percent
// on a comparison that should be even.) Before anything is measured, each
// side must give the answer it should, and ours the same records as the
// others (so that the comparison is between equal work). Then it measures
// round after round at load l (see measureRound): rounds rounds, or a
// pair's own Rounds; each of the first rounds ends with ceiling, if given.
func (b *bencher) compare(ctx context.Context, phase string, l Load, rounds int, pairs []Pair, ceiling *Side) error {
	b.cfg.Logf("%s: starting a coredns for each side of %d comparisons (dnsperf -c %d)", phase, len(pairs), l.Clients)
	for i := range pairs {
		p := &pairs[i]
		if p.Peer != nil && p.Peer.bin == "" {
			p.Peer, p.NoPeer = nil, "k8s_gateway did not build: "+b.whyNoGateway
		}
		for _, sd := range p.sides() {
			if err := b.startSide(ctx, p.Key, sd); err != nil {
				return err
			}
		}
		ours, err := b.sanity(&p.Ours)
		if err != nil {
			return err
		}
		for _, other := range p.sides()[1:] {
			theirs, err := b.sanity(other)
			if err != nil {
				return fmt.Errorf("%w; its log:\n%s", err, tail(other.srv.Log(), 15))
			}
			if !slices.Equal(ours, theirs) {
				return fmt.Errorf("%s: ours answers %v, %s %v", p.Title, ours, other.Server, theirs)
			}
		}
	}
	if ceiling != nil {
		if err := b.startSide(ctx, "ceiling", ceiling); err != nil {
			return err
		}
		if _, err := b.sanity(ceiling); err != nil {
			return err
		}
	}
	total := rounds
	for i := range pairs {
		total = max(total, pairs[i].rounds(rounds))
	}
	for round := range total {
		for i := range pairs {
			if p := &pairs[i]; round < p.rounds(rounds) {
				if err := b.measureRound(ctx, phase, l, p, round, total); err != nil {
					return err
				}
			}
		}
		if ceiling != nil && round < rounds {
			res, err := b.perf(ctx, l, ceiling)
			if err != nil {
				return fmt.Errorf("ceiling: %w", err)
			}
			ceiling.Runs = append(ceiling.Runs, res)
		}
	}
	return nil
}

// rounds is how many rounds p runs in a phase of phase rounds.
func (p *Pair) rounds(phase int) int {
	if p.Rounds > 0 {
		return p.Rounds
	}
	return phase
}

// measureRound measures each side of p once, the order rotated by round
// (A/B, then B/A) so that a drift in the machine's speed does not always
// favor the same side. If the host stole more than cfg.MaxSteal of the
// machine's CPU time during any of the runs, the round compared bursts, not
// binaries: it is measured again once the steal has stopped, at most three
// more times (the last try is kept whatever it reads; Pair.Redone counts
// the retries).
func (b *bencher) measureRound(ctx context.Context, phase string, l Load, p *Pair, round, of int) error {
	sides := p.sides()
	for try := 0; ; try++ {
		runs := make([]perf, len(sides))
		stolen := false
		for j := range sides {
			k := (j + round) % len(sides)
			sd := sides[k]
			res, err := b.perf(ctx, l, sd)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", p.Key, sd.Server, err)
			}
			runs[k], stolen = res, stolen || (b.cfg.MaxSteal > 0 && res.Steal > b.cfg.MaxSteal)
			b.cfg.Logf("%s round %d/%d: %-16s %-40s %6.0f qps  p99 %-9v cpu/query %-9v steal %.0f%%", phase, round+1, of, p.Key, sd.Server, res.QPS, roundDur(res.P99), res.CPUPerQuery, 100*res.Steal)
		}
		if !stolen || try == 3 {
			for k, sd := range sides {
				sd.Runs = append(sd.Runs, runs[k])
			}
			return nil
		}
		p.Redone++
		b.cfg.Logf("%s round %d/%d: %s again: the host stole more than %.0f%% of the CPU", phase, round+1, of, p.Key, 100*b.cfg.MaxSteal)
		if err := waitForNoSteal(ctx, b.cfg.MaxSteal, time.Minute); err != nil {
			return err
		}
	}
}

// waitForNoSteal waits, for at most limit, until a second passes in which
// the host steals at most maxSteal of the CPU.
func waitForNoSteal(ctx context.Context, maxSteal float64, limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		c0, err := readCPUClock()
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		c1, err := readCPUClock()
		if err != nil {
			return err
		}
		if c1.stolenSince(c0) <= maxSteal {
			return nil
		}
	}
	return nil
}

func (b *bencher) startSide(ctx context.Context, key string, sd *Side) error {
	s, err := b.start(ctx, key+": "+sd.Server, sd.bin, sd.corefile)
	if err != nil {
		return err
	}
	sd.srv, sd.addr, sd.metrics = s, s.Ports.DNSAddr(), strings.Contains(s.Corefile, "prometheus ")
	if sd.vpc {
		sd.addr = s.Ports.VPCAddr()
	}
	return nil
}

// perf measures one side for a round, after an unrecorded warm-up run of
// l.Warmup right before it (connections, caches, the heap after an idle
// spell), so that both sides of a pair start alike.
func (b *bencher) perf(ctx context.Context, l Load, sd *Side) (perf, error) {
	queries := sd.queryFile() // once for both runs, before the measured span
	if l.Warmup > 0 {
		warm := l
		warm.Round = l.Warmup
		if _, err := runDNSPerf(ctx, warm, b.cfg.Nice, b.cfg.Dir, sd.addr, queries); err != nil {
			return perf{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	mallocs0, bytes0, err := sd.allocated()
	if err != nil {
		return perf{}, err
	}
	cpu0, err := sd.srv.CPUTime()
	if err != nil {
		return perf{}, err
	}
	clock0, err := readCPUClock()
	if err != nil {
		return perf{}, err
	}
	res, err := runDNSPerf(ctx, l, b.cfg.Nice, b.cfg.Dir, sd.addr, queries)
	if err != nil {
		return res, err
	}
	if res.RSS, _, err = sd.srv.Memory(); err != nil {
		return res, err
	}
	clock1, err := readCPUClock()
	if err != nil {
		return res, err
	}
	cpu1, err := sd.srv.CPUTime()
	if err != nil {
		return res, err
	}
	res.Steal = clock1.stolenSince(clock0)
	if res.Completed == 0 || res.NoError < res.Completed*99/100 {
		return res, fmt.Errorf("%s: only %d of %d responses were NOERROR", sd.Query(), res.NoError, res.Completed)
	}
	n := float64(res.Completed)
	res.CPUPerQuery = (cpu1 - cpu0) / time.Duration(res.Completed)
	if sd.metrics {
		mallocs1, bytes1, err := sd.allocated()
		if err != nil {
			return res, err
		}
		res.AllocsPerQuery, res.BytesPerQuery = (mallocs1-mallocs0)/n, (bytes1-bytes0)/n
	}
	return res, nil
}

// allocated reads the Go runtime's allocation counters, as the prometheus
// plugin exports them, where the Corefile has that plugin.
func (sd *Side) allocated() (mallocs, bytes float64, err error) {
	if !sd.metrics {
		return 0, 0, nil
	}
	m, err := cluster.ScrapeValues(sd.srv.Ports.MetricsURL(), "go_memstats_mallocs_total", "go_memstats_alloc_bytes_total")
	return m["go_memstats_mallocs_total"], m["go_memstats_alloc_bytes_total"], err
}

// sanity is check, asked again for up to 30 s while it fails: k8s_gateway
// has no Ready, so its /ready can say 200 before its cache has synced.
func (b *bencher) sanity(sd *Side) ([]string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := b.check(sd)
		if err == nil || time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// check asks sd once (UDP, EDNS0 as dnsperf -e) and returns its answer
// records as sorted strings without owner TTLs, failing unless it is a
// NOERROR answer with sd.Want records.
func (b *bencher) check(sd *Side) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(sd.Name, sd.Type)
	m.SetEdns0(4096, false)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, sd.addr)
	if err != nil {
		return nil, fmt.Errorf("%s asked of %s: %w", sd.Query(), sd.Server, err)
	}
	records := r.Answer
	if sd.Name == whoamiName { // whoami answers in the additional section
		records = r.Extra
	}
	if r.Rcode != dns.RcodeSuccess || len(records) == 0 || r.Truncated {
		return nil, fmt.Errorf("%s asked of %s: rcode %s, %d answers, truncated %t", sd.Query(), sd.Server, dns.RcodeToString[r.Rcode], len(r.Answer), r.Truncated)
	}
	var out []string
	for _, rr := range records {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, "A "+rr.A.String())
		case *dns.SRV:
			// Targets name the endpoint under the asked name (10-244-0-1.stg-api...);
			// compare the endpoint label only.
			label, _, _ := strings.Cut(rr.Target, ".")
			out = append(out, fmt.Sprintf("SRV %d %s", rr.Port, label))
		default:
			out = append(out, dns.TypeToString[rr.Header().Rrtype])
		}
	}
	slices.Sort(out)
	if sd.Want > 0 && len(out) != sd.Want {
		return nil, fmt.Errorf("%s asked of %s: %d answers, want %d: %v", sd.Query(), sd.Server, len(out), sd.Want, out)
	}
	b.r.ThroughputSanity = append(b.r.ThroughputSanity, fmt.Sprintf("%s -> %s: %s, %d records, %d bytes", sd.Query(), sd.Server, dns.RcodeToString[r.Rcode], len(r.Answer)+len(r.Extra), r.Len()))
	return out, nil
}
