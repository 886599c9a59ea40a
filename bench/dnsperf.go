package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/warpdns/warpdns/test/cluster"
)

// perf is one dnsperf run, and what the server spent on it per query
// answered: CPU time (user + system) and, from the prometheus plugin's
// go_memstats counters, Go heap allocations.
type perf struct {
	QPS                           float64
	Completed, NoError            int // NoError: responses with rcode NOERROR
	P50, P99                      time.Duration
	CPUPerQuery                   time.Duration
	AllocsPerQuery, BytesPerQuery float64
	Steal                         float64 // of the machine's CPU time during the run, taken by the host (see Config.MaxSteal)
	RSS                           int64   // of the server process, at the end of the run
}

// dnsperfArgs is the load: fixed concurrency (Clients sockets, at most
// Outstanding queries in flight), UDP, EDNS0 (so that SRV answers with 10
// targets and their A records are not truncated), one thread, verbose so
// that every response's latency is printed and the percentiles can be
// computed.
func dnsperfArgs(l Load, addr, port, queryFile string) []string {
	return []string{
		"-s", addr, "-p", port, "-d", queryFile,
		"-l", strconv.FormatFloat(l.Round.Seconds(), 'f', -1, 64),
		"-c", strconv.Itoa(l.Clients), "-q", strconv.Itoa(l.Outstanding), "-T", "1",
		"-e", "-v",
	}
}

// dnsperfCommandLine is how the report shows the command.
func dnsperfCommandLine(l Load) string {
	return "dnsperf " + strings.Join(dnsperfArgs(l, "127.0.0.1", "PORT", "QUERYFILE"), " ")
}

// runDNSPerf sends the queries (a query file: one "name type" a line, asked
// in turn) to hostport for l.Round, at niceness nice.
// The verbose output goes to a file (not through a pipe we would have to
// keep up with) and is parsed afterwards.
func runDNSPerf(ctx context.Context, l Load, nice int, dir, hostport, queries string) (perf, error) {
	host, port, ok := strings.Cut(hostport, ":")
	if !ok {
		return perf{}, fmt.Errorf("bad address %q", hostport)
	}
	queryFile, out := filepath.Join(dir, "query.txt"), filepath.Join(dir, "dnsperf.out")
	defer os.Remove(queryFile)
	defer os.Remove(out)
	if err := os.WriteFile(queryFile, []byte(queries), 0o644); err != nil {
		return perf{}, err
	}
	f, err := os.Create(out)
	if err != nil {
		return perf{}, err
	}
	cmd := cluster.Niced(nice, "dnsperf", dnsperfArgs(l, host, port, queryFile)...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	if err == nil {
		stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
		err = cmd.Wait()
		stop()
	}
	f.Close()
	data, _ := os.ReadFile(out)
	if err != nil {
		return perf{}, fmt.Errorf("dnsperf: %w\n%s", err, tail(string(data), 20))
	}
	return parseDNSPerf(string(data))
}

func parseDNSPerf(out string) (perf, error) {
	var p perf
	var latencies []float64
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == ">" { // "> NOERROR whoami.example. A 0.000697"
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				latencies = append(latencies, v)
			}
			continue
		}
		key, value, _ := strings.Cut(strings.TrimSpace(line), ":")
		value = strings.TrimSpace(value)
		first, _, _ := strings.Cut(value, " ")
		switch key {
		case "Queries per second":
			p.QPS, _ = strconv.ParseFloat(first, 64)
		case "Queries completed":
			p.Completed, _ = strconv.Atoi(first)
		case "Response codes": // "NOERROR 236875 (100.00%), SERVFAIL 2 (0.00%)"
			for code := range strings.SplitSeq(value, ",") {
				if f := strings.Fields(code); len(f) >= 2 && f[0] == "NOERROR" {
					p.NoError, _ = strconv.Atoi(f[1])
				}
			}
		}
	}
	if p.QPS == 0 || len(latencies) == 0 {
		return perf{}, fmt.Errorf("dnsperf printed no statistics or no responses:\n%s", tail(out, 20))
	}
	seconds := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	p.P50, p.P99 = seconds(Percentile(latencies, 0.50)), seconds(Percentile(latencies, 0.99))
	return p, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
