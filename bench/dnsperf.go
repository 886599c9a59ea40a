package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/warpdns/warpdns/test/cluster"
)

// perf is one dnsperf run.
type perf struct {
	QPS       float64
	Completed int
	Lost      int
	NoError   int // responses with rcode NOERROR
	P50, P99  time.Duration
	// CPUPerQuery is the server's CPU time (user + system) during the run
	// divided by the queries it answered: what a query costs, which other
	// work on the machine disturbs far less than it disturbs QPS.
	CPUPerQuery time.Duration
	// AllocsPerQuery and BytesPerQuery are the Go heap allocations the
	// server made during the run per query answered (all of the process,
	// from the prometheus plugin's go_memstats counters): unlike time, they
	// do not depend on what else the machine is doing.
	AllocsPerQuery, BytesPerQuery float64
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

// runDNSPerf sends query to hostport for l.Round, at niceness nice.
// The verbose output goes to a file (not through a pipe we would have to
// keep up with) and is parsed afterwards.
func runDNSPerf(ctx context.Context, l Load, nice int, dir, hostport, query string) (perf, error) {
	host, port, ok := strings.Cut(hostport, ":")
	if !ok {
		return perf{}, fmt.Errorf("bad address %q", hostport)
	}
	qf, err := os.CreateTemp(dir, "query-*.txt")
	if err != nil {
		return perf{}, err
	}
	defer os.Remove(qf.Name())
	if _, err := fmt.Fprintln(qf, query); err != nil {
		return perf{}, err
	}
	qf.Close()
	out := filepath.Join(dir, "dnsperf.out")
	defer os.Remove(out)
	f, err := os.Create(out)
	if err != nil {
		return perf{}, err
	}
	cmd := cluster.Niced(nice, "dnsperf", dnsperfArgs(l, host, port, qf.Name())...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	if err == nil {
		stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
		err = cmd.Wait()
		stop()
	}
	f.Close()
	if err != nil {
		data, _ := os.ReadFile(out)
		return perf{}, fmt.Errorf("dnsperf: %w\n%s", err, tail(string(data), 20))
	}
	return parseDNSPerf(out)
}

func parseDNSPerf(path string) (perf, error) {
	f, err := os.Open(path)
	if err != nil {
		return perf{}, err
	}
	defer f.Close()
	var p perf
	var lat []float64
	var haveQPS bool
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := scanner.Text()
		if strings.HasPrefix(line, "> ") {
			// "> NOERROR whoami.example. A 0.000697"
			fields := strings.Fields(line)
			if len(fields) < 3 {
				continue
			}
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			if err != nil {
				continue
			}
			lat = append(lat, v)
			continue
		}
		key, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		first, _, _ := strings.Cut(value, " ")
		switch key {
		case "Queries per second":
			p.QPS, err = strconv.ParseFloat(first, 64)
			haveQPS = err == nil
		case "Queries completed":
			p.Completed, _ = strconv.Atoi(first)
		case "Queries lost":
			p.Lost, _ = strconv.Atoi(first)
		case "Response codes": // "NOERROR 236875 (100.00%), SERVFAIL 2 (0.00%)"
			for _, code := range strings.Split(value, ",") {
				if f := strings.Fields(code); len(f) >= 2 && f[0] == "NOERROR" {
					p.NoError, _ = strconv.Atoi(f[1])
				}
			}
		}
	}
	if err := scanner.Err(); err != nil {
		return perf{}, err
	}
	if !haveQPS || len(lat) == 0 {
		data, _ := os.ReadFile(path)
		return perf{}, fmt.Errorf("dnsperf printed no statistics or no responses:\n%s", tail(string(data), 20))
	}
	p.P50 = seconds(Percentile(lat, 0.50))
	p.P99 = seconds(Percentile(lat, 0.99))
	return p, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
