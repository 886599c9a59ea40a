// Package integration runs our coredns with the production Corefile.example
// against a real kube-apiserver and checks both listeners: the in-cluster one
// (stock answers) and the VPC-facing one (envalias + headlessonly).
package integration

import (
	"context"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warpdns/warpdns/test/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// env is the running world: a control plane and our coredns with
// Corefile.example (envalias stg, headlessonly on the VPC port).
type env struct {
	*instance
	cluster *cluster.Cluster
	bin     string // our coredns
	example string // Corefile.example's text
	dir     string
}

// instance is one running coredns.
type instance struct {
	inCluster string // 127.0.0.1:port standing in for :53
	vpc       string // 127.0.0.1:port standing in for :5353
	metrics   string // prometheus endpoint
	coredns   *cluster.CoreDNS
}

var (
	envOnce sync.Once
	shared  env
	envErr  error
)

func setUp(t *testing.T) *env {
	t.Helper()
	c := cluster.Shared(t)
	envOnce.Do(func() { envErr = shared.start(c) })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return &shared
}

func (e *env) start(c *cluster.Cluster) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	e.cluster = c
	var err error
	if e.dir, err = os.MkdirTemp("", "warpdns-integration-"); err != nil {
		return err
	}
	if e.bin, err = cluster.BuildOurCoreDNS(ctx, e.dir); err != nil {
		return err
	}
	if e.example, err = cluster.Example(); err != nil {
		return err
	}
	e.instance, err = e.run(ctx, e.example)
	return err
}

// noUpstream is forward's target: nothing listens there, so no traffic
// leaves loopback.
const noUpstream = "127.0.0.1:9"

// run starts our coredns with a Corefile of Corefile.example's shape.
func (e *env) run(ctx context.Context, corefileText string) (*instance, error) {
	c, err := cluster.RunCoreDNS(ctx, cluster.RunOptions{Dir: e.dir}, e.bin, cluster.LocalRenderer(corefileText, e.cluster.Kubeconfig, noUpstream))
	if err != nil {
		return nil, err
	}
	return &instance{inCluster: c.Ports.DNSAddr(), vpc: c.Ports.VPCAddr(), metrics: c.Ports.MetricsURL(), coredns: c}, nil
}

// variant runs our coredns with Corefile.example changed by replacing old
// with new (which must occur), for the duration of the test.
func (e *env) variant(t *testing.T, old, new string) *instance {
	t.Helper()
	if !strings.Contains(e.example, old) {
		t.Fatalf("Corefile.example has no %q", old)
	}
	c := cluster.RunForTest(t, e.bin, cluster.LocalRenderer(strings.Replace(e.example, old, new, 1), e.cluster.Kubeconfig, noUpstream))
	return &instance{inCluster: c.Ports.DNSAddr(), vpc: c.Ports.VPCAddr(), metrics: c.Ports.MetricsURL(), coredns: c}
}

// namespace creates a namespace of the test's own, so tests can run in any
// order against the one shared cluster and coredns.
func (e *env) namespace(t *testing.T, name string) string {
	t.Helper()
	if err := e.cluster.EnsureNamespace(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

// service creates a Service and its EndpointSlices.
func (e *env) service(t *testing.T, svc *corev1.Service, eps []cluster.Endpoint, named map[string]int32) *corev1.Service {
	t.Helper()
	ctx := context.Background()
	created, err := e.cluster.CreateService(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	if eps != nil {
		if err := e.cluster.SetEndpoints(ctx, created, eps, named); err != nil {
			t.Fatal(err)
		}
	}
	return created
}

func clusterIPService(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	if len(ports) == 0 {
		ports = []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: ports},
	}
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

func rcode(r *dns.Msg) string { return dns.RcodeToString[r.Rcode] }

// wireLen is the size the reply had on the wire: servers compress names, and
// a parsed message does not remember that.
func wireLen(m *dns.Msg) int {
	m = m.Copy()
	m.Compress = true
	return m.Len()
}
