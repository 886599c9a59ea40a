// Package integration runs our coredns with the production Corefile.example
// against a real kube-apiserver and checks both listeners: the in-cluster one
// (stock answers) and the VPC-facing one (envalias + headlessonly).
package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/warpdns/warpdns/test/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// env is the Env with our coredns running Corefile.example (envalias stg,
// headlessonly on the VPC port), shared by the tests.
type env struct {
	*cluster.Env
	*instance
}

// instance is one running coredns.
type instance struct {
	inCluster string // 127.0.0.1:port standing in for :53
	vpc       string // 127.0.0.1:port standing in for :5353
	metrics   string // prometheus endpoint
	coredns   *cluster.CoreDNS
}

func newInstance(c *cluster.CoreDNS) *instance {
	return &instance{inCluster: c.Ports.DNSAddr(), vpc: c.Ports.VPCAddr(), metrics: c.Ports.MetricsURL(), coredns: c}
}

func setUp(t *testing.T) *env {
	t.Helper()
	return cluster.Setup(t, func(ctx context.Context, e *cluster.Env) (*env, error) {
		c, err := e.RunExample(ctx, e.Example)
		if err != nil {
			return nil, err
		}
		return &env{e, newInstance(c)}, nil
	})
}

// variant runs our coredns with Corefile.example changed by replacing old
// with new (which must occur), for the duration of the test.
func (e *env) variant(t *testing.T, old, new string) *instance {
	t.Helper()
	if !strings.Contains(e.Example, old) {
		t.Fatalf("Corefile.example has no %q", old)
	}
	return newInstance(e.RunExampleForTest(t, strings.Replace(e.Example, old, new, 1)))
}

// namespace creates a namespace of the test's own, so tests can run in any
// order against the one shared cluster and coredns.
func (e *env) namespace(t *testing.T, name string) string {
	t.Helper()
	if err := e.EnsureNamespace(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

// service creates a Service and its EndpointSlices.
func (e *env) service(t *testing.T, svc *corev1.Service, eps []cluster.Endpoint, named map[string]int32) *corev1.Service {
	t.Helper()
	ctx := context.Background()
	created, err := e.CreateService(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	if eps != nil {
		if err := e.SetEndpoints(ctx, created, eps, named); err != nil {
			t.Fatal(err)
		}
	}
	return created
}

// query asks addr over network; bufsize > 0 adds an EDNS0 OPT record.
func query(t *testing.T, addr, network, name string, qtype uint16, bufsize uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if bufsize > 0 {
		m.SetEdns0(bufsize, false)
	}
	c := &dns.Client{Net: network, Timeout: 3 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s over %s to %s: %v", name, dns.TypeToString[qtype], network, addr, err)
	}
	return r
}

func ask(t *testing.T, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	return query(t, addr, "udp", name, qtype, 4096)
}

// addresses returns the sorted A/AAAA addresses of a section.
var addresses = cluster.Addresses

func owners(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.Header().Name)
	}
	return out
}

// eventually polls until check passes or the deadline passes: the coredns
// informer sees an API write a little later.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func wantAddrs(t *testing.T, what string, r *dns.Msg, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := addresses(r.Answer); !slices.Equal(got, want) {
		t.Errorf("%s: answer addresses %v, want %v\n%v", what, got, want, r)
	}
}

// waitReply asks until check passes on the reply (the informer sees an API
// write a little later) and returns that reply: over UDP with a 4096-byte
// EDNS0 buffer, over TCP without EDNS0.
func waitReply(t *testing.T, addr, network, name string, qtype uint16, check func(*dns.Msg) error) *dns.Msg {
	t.Helper()
	bufsize := uint16(4096)
	if network == "tcp" {
		bufsize = 0
	}
	var r *dns.Msg
	eventually(t, name+" "+dns.TypeToString[qtype]+" over "+network, func() error {
		r = query(t, addr, network, name, qtype, bufsize)
		return check(r)
	})
	return r
}

// waitAnswers waits until the reply has n answer records.
func waitAnswers(t *testing.T, addr, network, name string, qtype uint16, n int) *dns.Msg {
	t.Helper()
	return waitReply(t, addr, network, name, qtype, func(r *dns.Msg) error {
		if len(r.Answer) != n {
			return fmt.Errorf("%s with %d answers, want %d: %v", rcode(r), len(r.Answer), n, r.Answer)
		}
		return nil
	})
}

// waitAddrs waits until the answer's A and AAAA addresses are want.
func waitAddrs(t *testing.T, addr, network, name string, qtype uint16, want ...string) *dns.Msg {
	t.Helper()
	sort.Strings(want)
	return waitReply(t, addr, network, name, qtype, func(r *dns.Msg) error {
		if got := addresses(r.Answer); !slices.Equal(got, want) {
			return fmt.Errorf("%s with addresses %v, want %v", rcode(r), got, want)
		}
		return nil
	})
}

func rcode(r *dns.Msg) string { return dns.RcodeToString[r.Rcode] }

// wireLen is the size the reply had on the wire: servers compress names, and
// a parsed message does not remember that.
func wireLen(m *dns.Msg) int {
	m = m.Copy()
	m.Compress = true
	return m.Len()
}
