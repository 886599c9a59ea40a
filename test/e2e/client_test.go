package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/warpdns/warpdns/test/cluster"
)

// Commands run in a namespace with a clean environment: no proxy variable
// of the host's can send curl anywhere.
const cleanPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func inNetns(ns string, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, "env", "-i", cleanPath, name}, args...)...)
}

// reply is what dig printed, parsed.
type reply struct {
	Rcode      string // NOERROR, NXDOMAIN, ...
	Flags      string // qr aa rd ...
	Answer     []dns.RR
	Additional []dns.RR
	Text       string // dig's output, for error messages
	Took       time.Duration
}

var (
	digStatus = regexp.MustCompile(`status: ([A-Z]+)`)
	digFlags  = regexp.MustCompile(`;; flags: ([a-z ]*);`)
)

// dig runs dig inside namespace ns, as a person would type it; without an
// @server argument it uses the namespace's resolv.conf (the laptop's points
// at the gateway). A reply of any rcode is a reply; no reply is an error.
func dig(ns string, args ...string) (*reply, error) {
	full := append([]string{"+time=8", "+tries=1", "+nocmd", "+noall", "+comments", "+answer", "+additional"}, args...)
	start := time.Now()
	out, err := inNetns(ns, "dig", full...).CombinedOutput()
	r := &reply{Text: string(out), Took: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("dig %s (in %s): %v\n%s", strings.Join(args, " "), ns, err, out)
	}
	section := ""
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, ";; ->>HEADER<<-"):
			if m := digStatus.FindStringSubmatch(line); m != nil {
				r.Rcode = m[1]
			}
		case strings.HasPrefix(line, ";; flags:"):
			if m := digFlags.FindStringSubmatch(line); m != nil {
				r.Flags = m[1]
			}
		case strings.HasSuffix(line, "SECTION:"):
			section = line
		case strings.HasPrefix(line, ";"):
		default:
			rr, err := dns.NewRR(line)
			if err != nil {
				return r, fmt.Errorf("dig %s: cannot parse %q: %v", strings.Join(args, " "), line, err)
			}
			switch section {
			case ";; ANSWER SECTION:":
				r.Answer = append(r.Answer, rr)
			case ";; ADDITIONAL SECTION:":
				r.Additional = append(r.Additional, rr)
			}
		}
	}
	if r.Rcode == "" {
		return r, fmt.Errorf("dig %s (in %s): no reply\n%s", strings.Join(args, " "), ns, out)
	}
	return r, nil
}

// addrs returns the sorted A and AAAA addresses of rrs.
var addrs = cluster.Addresses

func owners(rrs []dns.RR) []string {
	seen := map[string]bool{}
	var out []string
	for _, rr := range rrs {
		if n := rr.Header().Name; !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// want checks a reply's rcode and its answer addresses (sorted).
func (r *reply) want(rcode string, addresses ...string) error {
	sort.Strings(addresses)
	got := addrs(r.Answer)
	if r.Rcode != rcode || strings.Join(got, " ") != strings.Join(addresses, " ") {
		return fmt.Errorf("got %s %v, want %s %v\n%s", r.Rcode, got, rcode, addresses, r.Text)
	}
	return nil
}

// fetched is one curl.
type fetched struct {
	Body     string
	RemoteIP string
}

// curl fetches url inside namespace ns, resolving the name with the
// namespace's resolv.conf (glibc, as any program on the laptop does).
func curl(ns, url string) (fetched, error) {
	out, err := inNetns(ns, "curl", "-sS", "--max-time", "5", "--noproxy", "*", "-w", "\n%{remote_ip}", url).CombinedOutput()
	if err != nil {
		return fetched{}, fmt.Errorf("curl %s (in %s): %v: %s", url, ns, err, bytes.TrimSpace(out))
	}
	body, remote, _ := strings.Cut(string(out), "\n")
	return fetched{Body: strings.TrimSpace(body), RemoteIP: strings.TrimSpace(remote)}, nil
}

// eventually polls check until it passes or the timeout ends, and returns
// how long it took. Polling stands in for a watch we do not have: what we
// wait for is another process's view of the world.
func eventually(timeout time.Duration, check func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("not within %s: %w", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// hostport joins an IP and a port.
func hostport(ip string, port int) string { return net.JoinHostPort(ip, fmt.Sprint(port)) }
