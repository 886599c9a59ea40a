package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/warpdns/warpdns/test/cluster"
)

// proc is a coredns process we started. The harness's cluster.CoreDNS keeps
// its PID to itself, and the memory numbers need it (/proc/PID/status), so
// the bench starts its servers itself, the same way: own process group, and
// killed with us (Pdeathsig).
type proc struct {
	cmd     *exec.Cmd
	started time.Time
	log     string
	done    chan struct{}
	err     error
}

func startProc(dir string, niceness int, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, "coredns.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := niced(niceness, bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop kills the process group and waits for it. Nothing here measures a
// shutdown, and SIGTERM would sit through the health plugin's lameduck (5 s
// in Corefile.example) every time.
func (p *proc) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *proc) logTail() string {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// rss reads VmRSS from /proc/PID/status, in bytes.
func (p *proc) rss() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest) // "12345 kB"
			if len(fields) == 2 && fields[1] == "kB" {
				kb, err := strconv.ParseInt(fields[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", p.cmd.Process.Pid)
}

// cpu is the CPU time (user + system, all threads) the process has used,
// from /proc/PID/stat (clock ticks of 1/100 s).
func (p *proc) cpu() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it don't.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", p.cmd.Process.Pid, data)
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", p.cmd.Process.Pid, data)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", p.cmd.Process.Pid, data)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// ports are the loopback ports one coredns gets.
type ports struct{ dns, vpc, health, ready, metrics int }

// server is a running coredns.
type server struct {
	name    string
	proc    *proc
	ports   ports
	dir     string
	toReady time.Duration // process start to the first 200 from /ready
}

// The Go runtime's allocation counters, as the prometheus plugin exports them.
const (
	mallocsTotal    = "go_memstats_mallocs_total"
	allocBytesTotal = "go_memstats_alloc_bytes_total"
)

// memstats reads the allocation counters from the server's prometheus plugin.
func (s *server) memstats() (map[string]float64, error) {
	return metrics(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.ports.metrics), mallocsTotal, allocBytesTotal)
}

func (s *server) addr() string    { return fmt.Sprintf("127.0.0.1:%d", s.ports.dns) }
func (s *server) vpcAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.ports.vpc) }
func (s *server) stop()           { s.proc.stop() }

// startServer writes the Corefile that corefile renders for fresh ports,
// starts bin with it, and returns once /ready answers 200 (timed) and the
// DNS listener answers over UDP and TCP.
func startServer(ctx context.Context, parent string, niceness int, name, bin string, corefile func(ports) (string, error)) (*server, error) {
	free, err := cluster.FreePorts(5)
	if err != nil {
		return nil, err
	}
	pt := ports{dns: free[0], vpc: free[1], health: free[2], ready: free[3], metrics: free[4]}
	text, err := corefile(pt)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "coredns-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	p, err := startProc(dir, niceness, bin, "-conf", conf)
	if err != nil {
		return nil, err
	}
	s := &server{name: name, proc: p, ports: pt, dir: dir}
	readyURL := fmt.Sprintf("http://127.0.0.1:%d/ready", pt.ready)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if httpOK(readyURL) == nil {
			s.toReady = time.Since(p.started)
			break
		}
		if err := s.check(ctx, deadline); err != nil {
			return nil, fmt.Errorf("%s: not ready: %w", name, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		if err := dnsAnswers(s.addr()); err == nil {
			return s, nil
		} else if err := s.check(ctx, deadline); err != nil {
			return nil, fmt.Errorf("%s: DNS listener not answering: %w", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// check fails if the process died, time ran out or ctx ended (and then
// stops the process).
func (s *server) check(ctx context.Context, deadline time.Time) error {
	var err error
	switch {
	case s.proc.exited():
		err = fmt.Errorf("exited (%v); log %s:\n%s", s.proc.err, s.proc.log, s.proc.logTail())
	case time.Now().After(deadline):
		err = fmt.Errorf("timed out; log %s:\n%s", s.proc.log, s.proc.logTail())
	case ctx.Err() != nil:
		err = ctx.Err()
	}
	if err != nil {
		s.stop()
	}
	return err
}

// niced runs bin under nice(1) when niceness is not 0. nice executes bin in
// its own place, so the process (and its PID) is bin's, and every thread it
// starts has the niceness from the start. Without the privilege to lower it
// nice says so and runs bin as it is.
func niced(niceness int, bin string, args ...string) *exec.Cmd {
	if niceness == 0 {
		return exec.Command(bin, args...)
	}
	return exec.Command("nice", append([]string{"-n", strconv.Itoa(niceness), bin}, args...)...)
}

// stage copies bin into dir with a plain write. Where a binary's file came
// from shows in its RSS: the Go linker writes its output through a memory
// map, and the page cache then holds it in large folios that a process maps
// with 2 MB pages, about 25 MB more RSS for the same program than a file
// written with write(2). Both binaries are staged alike so that the RSS
// compares programs, not files.
func stage(dir, name, bin string) (string, error) {
	src, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer src.Close()
	out := filepath.Join(dir, name)
	dst, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", err
	}
	return out, dst.Close()
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

func httpOK(url string) error {
	resp, err := httpClient.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// metrics reads the named gauges from a prometheus text endpoint.
func metrics(url string, names ...string) (map[string]float64, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", url, scanner.Text(), err)
		}
		out[name] = v
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("%s: no %s", url, n)
		}
	}
	return out, scanner.Err()
}

// dnsAnswers passes once addr answers a query over UDP and TCP.
func dnsAnswers(addr string) error {
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("ready.probe.invalid.", dns.TypeA)
		c := &dns.Client{Net: network, Timeout: time.Second}
		if _, _, err := c.Exchange(m, addr); err != nil {
			return fmt.Errorf("%s %s: %w", network, addr, err)
		}
	}
	return nil
}

// stubUpstream is forward's target: every name is NXDOMAIN, answered on
// loopback, so that nothing (the loop plugin's probe included) leaves the
// machine. It runs until ctx ends.
func stubUpstream(ctx context.Context) (string, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := pc.LocalAddr().String()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return "", err
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		_ = w.WriteMsg(m)
	})
	udp := &dns.Server{PacketConn: pc, Handler: handler}
	tcp := &dns.Server{Listener: l, Handler: handler}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	go func() {
		<-ctx.Done()
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	}()
	return addr, nil
}
