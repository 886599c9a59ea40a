package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
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
	digStatus = regexp.MustCompile(`;; ->>HEADER<<-.* status: ([A-Z]+)`)
	digFlags  = regexp.MustCompile(`;; flags: ([a-z ]*);`)
)

// dig runs dig with query's words inside namespace ns, as a person would
// type it; without an @server word it uses the namespace's resolv.conf (the
// laptop's points at the gateway). A reply of any rcode is a reply; no reply
// is an error.
func dig(ns, query string) (*reply, error) {
	args := append([]string{"+time=8", "+tries=1", "+nocmd", "+noall", "+comments", "+answer", "+additional"}, strings.Fields(query)...)
	start := time.Now()
	out, err := inNetns(ns, "dig", args...).CombinedOutput()
	r := &reply{Text: string(out), Took: time.Since(start)}
	status := digStatus.FindStringSubmatch(r.Text)
	if err != nil || status == nil {
		return r, fmt.Errorf("dig %s (in %s): no reply (%v)\n%s", query, ns, err, out)
	}
	r.Rcode = status[1]
	if m := digFlags.FindStringSubmatch(r.Text); m != nil {
		r.Flags = m[1]
	}
	// With +comments, dig prints a header line before each section.
	var section *[]dns.RR
	for _, line := range strings.Split(r.Text, "\n") {
		switch line = strings.TrimSpace(line); {
		case line == ";; ANSWER SECTION:":
			section = &r.Answer
		case line == ";; ADDITIONAL SECTION:":
			section = &r.Additional
		case strings.HasSuffix(line, "SECTION:"):
			section = nil
		case line == "" || strings.HasPrefix(line, ";") || section == nil:
		default:
			rr, err := dns.NewRR(line)
			if err != nil {
				return r, fmt.Errorf("dig %s: cannot parse %q: %v", query, line, err)
			}
			*section = append(*section, rr)
		}
	}
	return r, nil
}

// ask is dig whose reply must have rcode and, sorted, exactly the answer
// addresses given.
func ask(ns, query, rcode string, addresses ...string) (*reply, error) {
	r, err := dig(ns, query)
	if err == nil {
		err = r.want(rcode, addresses...)
	}
	return r, err
}

// addrs returns the sorted A and AAAA addresses of rrs.
var addrs = cluster.Addresses

// want checks a reply's rcode and its answer addresses (sorted).
func (r *reply) want(rcode string, addresses ...string) error {
	addresses = slices.Sorted(slices.Values(addresses))
	if got := addrs(r.Answer); r.Rcode != rcode || !slices.Equal(got, addresses) {
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
