package bench

import (
	"context"
	"fmt"
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
	Target         float64 // the ratio ours/upstream must reach; 0: none
	Ours, Upstream Side
	Peer           *Side  // k8s_gateway, where it runs
	NoPeer         string // why the row has no k8s_gateway side, where it should
}

// Side is one side of a Pair and its runs, one per round.
type Side struct {
	endpoint
	Runs []perf
}

func (p *Pair) sides() []*Side {
	out := []*Side{&p.Ours, &p.Upstream}
	if p.Peer != nil {
		out = append(out, p.Peer)
	}
	return out
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

// side is what starts one side of a comparison.
type side struct {
	label, bin string
	corefile   func(cluster.Ports) (string, error)
	vpc        bool // asked on Corefile.example's VPC listener
	name       string
	qtype      uint16
	want       int
}

// pairSpec is one comparison to set up.
type pairSpec struct {
	key, title string
	target     float64
	ours, up   side
	peer       *side
}

// startPairs starts a coredns for each side of each comparison, so that
// every side has the same history: measured once a round, idle in between.
// (One upstream process shared by all pairs was busy four times as often as
// ours with the stock Corefile, and came out of each round warmer: a few
// percent on a comparison that should be even.) Before anything is
// measured, each side must give the answer it should, and ours the same
// records as the others (so that the comparison is between equal work).
func (b *bencher) startPairs(ctx context.Context, specs []pairSpec) ([]*Pair, error) {
	var pairs []*Pair
	for _, sp := range specs {
		p := &Pair{Key: sp.key, Title: sp.title, Target: sp.target}
		var err error
		if p.Ours.endpoint, err = b.endpointOf(ctx, sp.key, sp.ours); err != nil {
			return nil, err
		}
		if p.Upstream.endpoint, err = b.endpointOf(ctx, sp.key, sp.up); err != nil {
			return nil, err
		}
		if sp.peer != nil {
			if sp.peer.bin == "" {
				p.NoPeer = "k8s_gateway did not build: " + b.whyNoGateway
			} else {
				p.Peer = &Side{}
				if p.Peer.endpoint, err = b.endpointOf(ctx, sp.key, *sp.peer); err != nil {
					return nil, err
				}
			}
		}
		ours, err := b.sanity(p.Ours.endpoint)
		if err != nil {
			return nil, err
		}
		for _, other := range p.sides()[1:] {
			theirs, err := b.sanity(other.endpoint)
			if err != nil {
				return nil, fmt.Errorf("%w; its log:\n%s", err, tail(other.srv.Log(), 15))
			}
			if !slices.Equal(ours, theirs) {
				return nil, fmt.Errorf("%s: ours answers %v, %s %v", p.Title, ours, other.Server, theirs)
			}
		}
		pairs = append(pairs, p)
	}
	return pairs, nil
}

func (b *bencher) endpointOf(ctx context.Context, key string, sd side) (endpoint, error) {
	s, err := b.start(ctx, key+": "+sd.label, sd.bin, sd.corefile)
	if err != nil {
		return endpoint{}, err
	}
	addr := s.Ports.DNSAddr()
	if sd.vpc {
		addr = s.Ports.VPCAddr()
	}
	return endpoint{Server: sd.label, srv: s, addr: addr, Name: sd.name, Type: sd.qtype, Want: sd.want,
		metrics: strings.Contains(s.Corefile, "prometheus ")}, nil
}

// measure runs rounds rounds of every pair at load l, rotating the order of
// the sides from round to round (A/B, then B/A) so that a drift in the
// machine's load does not always favor the same side; each round ends with
// ceiling, if given.
func (b *bencher) measure(ctx context.Context, phase string, l Load, rounds int, pairs []*Pair, ceiling *endpoint) error {
	for round := range rounds {
		for _, p := range pairs {
			sides := p.sides()
			for i := range sides {
				sd := sides[(i+round)%len(sides)]
				res, err := b.perf(ctx, l, sd.endpoint)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", p.Title, sd.Server, err)
				}
				sd.Runs = append(sd.Runs, res)
				b.cfg.Logf("%s round %d/%d: %-16s %-40s %6.0f qps  p99 %-9v cpu/query %v", phase, round+1, rounds, p.Key, sd.Server, res.QPS, roundDur(res.P99), res.CPUPerQuery)
			}
		}
		if ceiling == nil {
			continue
		}
		res, err := b.perf(ctx, l, *ceiling)
		if err != nil {
			return fmt.Errorf("whoami: %w", err)
		}
		b.r.Whoami = append(b.r.Whoami, res)
		b.cfg.Logf("%s round %d/%d: %-16s %-40s %6.0f qps  p99 %-9v cpu/query %v", phase, round+1, rounds, "ceiling", ceiling.Server, res.QPS, roundDur(res.P99), res.CPUPerQuery)
	}
	return nil
}

func (b *bencher) throughput(ctx context.Context) error {
	cfg, logf := b.cfg, b.cfg.Logf
	const (
		clusterIPName = "api.platform.svc.cluster.local."
		headlessName  = "api-headless.platform.svc.cluster.local."
		aliasName     = "stg-api.platform.svc.cluster.local."
	)
	n := cfg.Endpoints
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
	specs := []pairSpec{
		{key: "stock-a", title: "stock Corefile, A of a ClusterIP Service", target: 0.98,
			ours: side{"ours, stock Corefile", b.ours, b.files.stock, false, clusterIPName, dns.TypeA, 1},
			up:   upStock(clusterIPName, dns.TypeA, 1)},
		{key: "incluster-a", title: "Corefile.example in-cluster listener (:53), A of a ClusterIP Service",
			ours: ourInCluster, up: upExample(false, clusterIPName, dns.TypeA, 1)},
		{key: "vpc-a", title: fmt.Sprintf("VPC path, A (%d ready endpoints)", n), target: 0.95,
			ours: ourVPC(aliasName, dns.TypeA, n), up: upExample(true, headlessName, dns.TypeA, n)},
		{key: "vpc-srv", title: fmt.Sprintf("VPC path, SRV (%d ready endpoints)", n), target: 0.95,
			ours: ourVPC("_http._tcp."+aliasName, dns.TypeSRV, n), up: upExample(true, "_http._tcp."+headlessName, dns.TypeSRV, n)},
		// Both listeners against upstream's stock Corefile: what
		// Corefile.example's acl and its second listener (upstream's
		// plugins) add on top of ours.
		{key: "incluster-a-stock", title: "Corefile.example in-cluster listener (:53), A of a ClusterIP Service, against upstream's stock Corefile",
			ours: ourInCluster, up: upStock(clusterIPName, dns.TypeA, 1)},
		{key: "vpc-a-stock", title: fmt.Sprintf("VPC path, A (%d ready endpoints), against upstream's stock Corefile", n),
			ours: ourVPC(aliasName, dns.TypeA, n), up: upStock(headlessName, dns.TypeA, n)},
	}
	logf("throughput: starting a coredns for each side of %d comparisons, and upstream whoami", len(specs))
	pairs, err := b.startPairs(ctx, specs)
	if err != nil {
		return err
	}
	ceiling, err := b.endpointOf(ctx, "ceiling", side{"upstream, whoami", b.upstream, b.files.whoami, false, whoamiName, dns.TypeA, 0})
	if err != nil {
		return err
	}
	if _, err := b.sanity(ceiling); err != nil {
		return err
	}
	// Propagation uses the VPC-path server; the others stop after this phase.
	b.exampleServer = pairs[2].Ours.srv
	if err := b.measure(ctx, "throughput", cfg.Load, cfg.Rounds, pairs, &ceiling); err != nil {
		return err
	}
	for _, p := range pairs {
		b.r.Throughput = append(b.r.Throughput, *p)
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
	cfg := b.cfg
	const (
		alias    = "stg-ten.platform.svc.cluster.local."
		headless = "tenhl.platform.svc.cluster.local."
		gateway  = "ten.platform.svc.cluster.local."
		plain    = "api.platform.svc.cluster.local."
	)
	n := cfg.Endpoints
	ours := func(name string, qtype uint16) side {
		return side{"ours, plain block", b.ours, b.files.plainOurs, false, name, qtype, n}
	}
	up := func(name string, qtype uint16) side {
		return side{"upstream, plain block", b.upstream, b.files.plainUpstream, false, name, qtype, n}
	}
	specs := []pairSpec{
		{key: "sat-stock-a", title: "saturated, stock Corefile, A of a ClusterIP Service", target: 0.98,
			ours: side{"ours, stock Corefile", b.ours, b.files.stock, false, plain, dns.TypeA, 1},
			up:   side{"upstream, stock Corefile", b.upstream, b.files.stock, false, plain, dns.TypeA, 1}},
		{key: "sat-plain-a", title: fmt.Sprintf("saturated, plain block, A (%d ready endpoints)", n), target: 0.95,
			ours: ours(alias, dns.TypeA), up: up(headless, dns.TypeA),
			peer: &side{"k8s_gateway, plain block", b.gateway, b.files.k8sGateway, false, gateway, dns.TypeA, n}},
		{key: "sat-plain-srv", title: fmt.Sprintf("saturated, plain block, SRV (%d ready endpoints)", n), target: 0.95,
			ours: ours("_http._tcp."+alias, dns.TypeSRV), up: up("_http._tcp."+headless, dns.TypeSRV)},
	}
	cfg.Logf("saturated: starting a coredns for each side of %d comparisons (dnsperf -c %d)", len(specs), cfg.Saturated.Clients)
	pairs, err := b.startPairs(ctx, specs)
	if err != nil {
		return err
	}
	if err := b.measure(ctx, "saturated", cfg.Saturated, cfg.SatRounds, pairs, nil); err != nil {
		return err
	}
	for _, p := range pairs {
		b.r.Saturated = append(b.r.Saturated, *p)
	}
	b.stopAllBut(b.exampleServer)
	return nil
}

const whoamiName = "whoami.example."

// perf measures one side for a round, after an unrecorded warm-up run of
// cfg.Warmup right before it (connections, caches, the heap after an idle
// spell), so that both sides of a pair start alike.
func (b *bencher) perf(ctx context.Context, l Load, e endpoint) (perf, error) {
	if l.Warmup > 0 {
		warm := l
		warm.Round = l.Warmup
		if _, err := runDNSPerf(ctx, warm, b.cfg.Nice, b.cfg.Dir, e.addr, e.query()); err != nil {
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
	cpu0, err := e.srv.CPUTime()
	if err != nil {
		return perf{}, err
	}
	res, err := runDNSPerf(ctx, l, b.cfg.Nice, b.cfg.Dir, e.addr, e.query())
	if err != nil {
		return res, err
	}
	cpu1, err := e.srv.CPUTime()
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

// sanity is check, asked again for up to 30 s while it fails: k8s_gateway
// has no Ready, so its /ready can say 200 before its cache has synced.
func (b *bencher) sanity(e endpoint) ([]string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := b.check(e)
		if err == nil || time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// check asks e once (UDP, EDNS0 as dnsperf -e) and returns its answer
// records as sorted strings without owner TTLs, failing unless it is a
// NOERROR answer with e.Want records.
func (b *bencher) check(e endpoint) ([]string, error) {
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
