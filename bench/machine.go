package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// proc is /proc (errors show as empty fields).
var proc, _ = procfs.NewDefaultFS()

// Machine describes where the numbers were taken.
type Machine struct {
	CPUs      int
	CPUModel  string
	MemTotal  string
	Kernel    string
	GoVersion string
}

// LoadSample is /proc/loadavg when a phase began: other builds and tests
// may share the machine, and this shows it.
type LoadSample struct {
	Phase   string
	At      time.Time
	LoadAvg string // the 1, 5 and 15 minute load averages
}

// Binary is one coredns binary as built.
type Binary struct {
	Name    string
	Version string   // its -version output, one line
	Modules []string // key modules from `go version -m`
	Build   []string // key build settings
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if cpus, err := proc.CPUInfo(); err == nil && len(cpus) > 0 {
		m.CPUModel = cpus[0].ModelName
	}
	if mem, err := proc.Meminfo(); err == nil && mem.MemTotal != nil {
		m.MemTotal = fmt.Sprintf("%d kB", *mem.MemTotal)
	}
	return m
}

func (r *Results) load(phase string) {
	s := LoadSample{Phase: phase, At: time.Now()}
	if l, err := proc.LoadAvg(); err == nil {
		s.LoadAvg = fmt.Sprintf("%.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
	}
	r.Load = append(r.Load, s)
}

func dnsperfVersion() string {
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "dnsperf").Output(); err == nil && len(out) > 0 {
		return "dnsperf " + string(out) + " (Debian package)"
	}
	out, _ := exec.Command("dnsperf", "-h").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Version ") {
			return "dnsperf " + strings.TrimPrefix(line, "Version ")
		}
	}
	return "dnsperf (version unknown)"
}

func describeBinary(name, path string) Binary {
	b := Binary{Name: name}
	if out, err := exec.Command(path, "-version").Output(); err == nil {
		b.Version = strings.Join(strings.Fields(strings.ReplaceAll(string(out), "\n", " ")), " ")
	}
	out, err := exec.Command("go", "version", "-m", path).Output()
	if err != nil {
		return b
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && (f[0] == "mod" || f[0] == "dep") &&
			(f[1] == "github.com/coredns/coredns" || f[1] == "github.com/miekg/dns" || f[1] == "k8s.io/client-go" || f[1] == "github.com/warpdns/warpdns"):
			b.Modules = append(b.Modules, f[1]+" "+f[2])
		case len(f) == 2 && f[0] == "build" && (strings.HasPrefix(f[1], "CGO_ENABLED=") || strings.HasPrefix(f[1], "-trimpath") || strings.HasPrefix(f[1], "-ldflags")):
			b.Build = append(b.Build, f[1])
		case strings.HasPrefix(line, path+":"):
			b.Build = append(b.Build, strings.TrimSpace(strings.TrimPrefix(line, path+":")))
		}
	}
	return b
}

// cpuClock is the machine's CPU time so far (all CPUs, every state) and
// the part of it the hypervisor stole: time a virtual CPU wanted to run and
// the host ran something else (the steal column of /proc/stat).
type cpuClock struct{ total, steal float64 }

func readCPUClock() (cpuClock, error) {
	s, err := proc.Stat()
	if err != nil {
		return cpuClock{}, err
	}
	t := s.CPUTotal
	return cpuClock{total: t.User + t.Nice + t.System + t.Idle + t.Iowait + t.IRQ + t.SoftIRQ + t.Steal, steal: t.Steal}, nil
}

// stolenSince is the fraction of the machine's CPU time stolen since c0.
func (c cpuClock) stolenSince(c0 cpuClock) float64 {
	if c.total <= c0.total {
		return 0
	}
	return (c.steal - c0.steal) / (c.total - c0.total)
}
