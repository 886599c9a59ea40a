package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Pair is one comparison: the same answer asked of ours and of upstream,
// round after round.
type Pair struct {
	Key, Title     string
	Ours, Upstream endpoint
	Target         float64 // the ratio ours/upstream must reach; 0: none
	OursRuns       []perf  // one per round
	UpstreamRuns   []perf
}

// endpoint is a server address and the one query dnsperf repeats to it.
type endpoint struct {
	Server string // which coredns and Corefile
	srv    *server
	addr   string
	Name   string
	Type   uint16
	Want   int // records in the answer; 0: any
	// metrics: the Corefile has the prometheus plugin, which tells the
	// allocations per query.
	metrics bool
}

func (e endpoint) query() string {
	return strings.TrimSuffix(e.Name, ".") + " " + dns.TypeToString[e.Type]
}

func (b *bencher) throughput(ctx context.Context) error {
	cfg, logf := b.cfg, b.cfg.Logf
	const (
		clusterIPName = "api.platform.svc.cluster.local."
		headlessName  = "api-headless.platform.svc.cluster.local."
		aliasName     = "stg-api.platform.svc.cluster.local."
	)
	n := cfg.Endpoints
	// Every side of every pair is a coredns process of its own, so that
	// both sides of a pair have the same history: measured once a round,
	// idle in between. (One upstream process shared by all pairs was busy
	// four times as often as ours with the stock Corefile, and came out of
	// each round warmer: a few percent on a comparison that should be even.)
	type side struct {
		label, bin string
		corefile   func(ports) (string, error)
		vpc        bool
		name       string
		qtype      uint16
		want       int
	}
	upStock := func(name string, qtype uint16, want int) side {
		return side{"upstream, stock Corefile", b.upstream, b.files.stock, false, name, qtype, want}
	}
	ourVPC := func(name string, qtype uint16, want int) side {
		return side{"ours, Corefile.example :5353", b.ours, b.files.exampleLocal, true, name, qtype, want}
	}
	ourInCluster := side{"ours, Corefile.example :53", b.ours, b.files.exampleLocal, false, clusterIPName, dns.TypeA, 1}
	// Upstream with the same server block, less our two plugins.
	upExample := func(vpc bool, name string, qtype uint16, want int) side {
		label := "upstream, Corefile.example without envalias and headlessonly :53"
		if vpc {
			label = "upstream, Corefile.example without envalias and headlessonly :5353"
		}
		return side{label, b.upstream, b.files.exampleWithoutOurs, vpc, name, qtype, want}
	}
	specs := []struct {
		key, title string
		target     float64
		ours, up   side
	}{
		{"stock-a", "stock Corefile, A of a ClusterIP Service", 0.98,
			side{"ours, stock Corefile", b.ours, b.files.stock, false, clusterIPName, dns.TypeA, 1},
			upStock(clusterIPName, dns.TypeA, 1)},
		{"incluster-a", "Corefile.example in-cluster listener (:53), A of a ClusterIP Service", 0,
			ourInCluster, upExample(false, clusterIPName, dns.TypeA, 1)},
		{"vpc-a", fmt.Sprintf("VPC path, A (%d ready endpoints)", n), 0.95,
			ourVPC(aliasName, dns.TypeA, n),
			upExample(true, headlessName, dns.TypeA, n)},
		{"vpc-srv", fmt.Sprintf("VPC path, SRV (%d ready endpoints)", n), 0.95,
			ourVPC("_http._tcp."+aliasName, dns.TypeSRV, n),
			upExample(true, "_http._tcp."+headlessName, dns.TypeSRV, n)},
		// Both listeners against upstream's stock Corefile: what
		// Corefile.example's acl and its second listener (upstream's
		// plugins) add on top of ours.
		{"incluster-a-stock", "Corefile.example in-cluster listener (:53), A of a ClusterIP Service, against upstream's stock Corefile", 0,
			ourInCluster, upStock(clusterIPName, dns.TypeA, 1)},
		{"vpc-a-stock", fmt.Sprintf("VPC path, A (%d ready endpoints), against upstream's stock Corefile", n), 0,
			ourVPC(aliasName, dns.TypeA, n),
			upStock(headlessName, dns.TypeA, n)},
	}
	logf("throughput: starting a coredns for each side of %d comparisons, and upstream whoami", len(specs))
	endpointOf := func(key string, sd side) (endpoint, error) {
		s, err := b.start(ctx, key+": "+sd.label, sd.bin, sd.corefile)
		if err != nil {
			return endpoint{}, err
		}
		addr := s.addr()
		if sd.vpc {
			addr = s.vpcAddr()
		}
		return endpoint{Server: sd.label, srv: s, addr: addr, Name: sd.name, Type: sd.qtype, Want: sd.want, metrics: true}, nil
	}
	var pairs []*Pair
	for _, sp := range specs {
		p := &Pair{Key: sp.key, Title: sp.title, Target: sp.target}
		var err error
		if p.Ours, err = endpointOf(sp.key, sp.ours); err != nil {
			return err
		}
		if p.Upstream, err = endpointOf(sp.key, sp.up); err != nil {
			return err
		}
		pairs = append(pairs, p)
	}
	ceiling, err := endpointOf("ceiling", side{"upstream, whoami", b.upstream, b.files.whoami, false, whoamiName, dns.TypeA, 0})
	if err != nil {
		return err
	}
	ceiling.metrics = false // its Corefile has whoami only
	// Propagation uses the VPC-path server; the others stop after this phase.
	b.exampleServer = pairs[2].Ours.srv

	// Before measuring anything: each side gives the answer it should, and
	// ours gives the same records as upstream on every pair (so that the
	// comparison is between equal work).
	for _, p := range pairs {
		ours, err := b.sanity(p.Ours)
		if err != nil {
			return err
		}
		up, err := b.sanity(p.Upstream)
		if err != nil {
			return err
		}
		if !slices.Equal(ours, up) {
			return fmt.Errorf("%s: ours answers %v, upstream %v", p.Title, ours, up)
		}
	}
	if _, err := b.sanity(ceiling); err != nil {
		return err
	}

	for round := range cfg.Rounds {
		for _, p := range pairs {
			// A/B in even rounds, B/A in odd ones, so that a drift in the
			// machine's load does not always favor the same side.
			order := []*endpoint{&p.Ours, &p.Upstream}
			if round%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, e := range order {
				res, err := b.perf(ctx, *e)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", p.Title, e.Server, err)
				}
				if e == &p.Ours {
					p.OursRuns = append(p.OursRuns, res)
				} else {
					p.UpstreamRuns = append(p.UpstreamRuns, res)
				}
				logf("throughput round %d/%d: %-40s %-30s %6.0f qps  p99 %-9v cpu/query %v", round+1, cfg.Rounds, chartLabels[p.Key], e.Server, res.QPS, roundDur(res.P99), res.CPUPerQuery)
			}
		}
		res, err := b.perf(ctx, ceiling)
		if err != nil {
			return fmt.Errorf("whoami: %w", err)
		}
		b.r.Whoami = append(b.r.Whoami, res)
		logf("throughput round %d/%d: %-40s %-30s %6.0f qps  p99 %-9v cpu/query %v", round+1, cfg.Rounds, "ceiling", ceiling.Server, res.QPS, roundDur(res.P99), res.CPUPerQuery)
	}
	for _, p := range pairs {
		b.r.Throughput = append(b.r.Throughput, *p)
	}
	// Only the VPC-path server stays up, for propagation.
	for _, s := range b.running {
		if s != b.exampleServer {
			s.stop()
		}
	}
	return nil
}

const whoamiName = "whoami.example."

// perf measures one side for a round, after an unrecorded warm-up run of
// cfg.Warmup right before it (connections, caches, the heap after an idle
// spell), so that both sides of a pair start alike.
func (b *bencher) perf(ctx context.Context, e endpoint) (perf, error) {
	if b.cfg.Warmup > 0 {
		warm := b.cfg
		warm.Round = b.cfg.Warmup
		if _, err := runDNSPerf(ctx, warm, b.cfg.Dir, e.addr, e.query()); err != nil {
			return perf{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	var mem0 map[string]float64
	if e.metrics {
		var err error
		if mem0, err = e.srv.memstats(); err != nil {
			return perf{}, err
		}
	}
	cpu0, err := e.srv.proc.cpu()
	if err != nil {
		return perf{}, err
	}
	res, err := runDNSPerf(ctx, b.cfg, b.cfg.Dir, e.addr, e.query())
	if err != nil {
		return res, err
	}
	cpu1, err := e.srv.proc.cpu()
	if err != nil {
		return res, err
	}
	if res.Completed > 0 {
		res.CPUPerQuery = (cpu1 - cpu0) / time.Duration(res.Completed)
	}
	if e.metrics && res.Completed > 0 {
		mem1, err := e.srv.memstats()
		if err != nil {
			return res, err
		}
		n := float64(res.Completed)
		res.AllocsPerQuery = (mem1[mallocsTotal] - mem0[mallocsTotal]) / n
		res.BytesPerQuery = (mem1[allocBytesTotal] - mem0[allocBytesTotal]) / n
	}
	if res.Completed == 0 || res.NoError < res.Completed*99/100 {
		return res, fmt.Errorf("%s: only %d of %d responses were NOERROR", e.query(), res.NoError, res.Completed)
	}
	return res, nil
}

// sanity asks e once (UDP, EDNS0 as dnsperf -e) and returns its answer
// records as sorted strings without owner TTLs, failing unless it is a
// NOERROR answer with e.Want records.
func (b *bencher) sanity(e endpoint) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(e.Name, e.Type)
	m.SetEdns0(4096, false)
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, e.addr)
	if err != nil {
		return nil, fmt.Errorf("%s asked of %s: %w", e.query(), e.Server, err)
	}
	records := r.Answer
	if e.Name == whoamiName { // whoami answers in the additional section
		records = r.Extra
	}
	if r.Rcode != dns.RcodeSuccess || len(records) == 0 || r.Truncated {
		return nil, fmt.Errorf("%s asked of %s: rcode %s, %d answers, truncated %t", e.query(), e.Server, dns.RcodeToString[r.Rcode], len(r.Answer), r.Truncated)
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
	if e.Want > 0 && len(out) != e.Want {
		return nil, fmt.Errorf("%s asked of %s: %d answers, want %d: %v", e.query(), e.Server, len(out), e.Want, out)
	}
	b.r.ThroughputSanity = append(b.r.ThroughputSanity, fmt.Sprintf("%s -> %s: %s, %d records, %d bytes", e.query(), e.Server, dns.RcodeToString[r.Rcode], len(r.Answer)+len(r.Extra), r.Len()))
	return out, nil
}
