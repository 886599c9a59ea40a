// Package differential proves the drop-in promise: with the stock kube-dns
// Corefile, our coredns answers exactly as upstream CoreDNS v1.15.0 does. Both
// binaries run side by side against the same real kube-apiserver and the same
// stub upstream, and every query is asked of both over UDP and TCP.
package differential

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warpdns/warpdns/test/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// TestDropInMatchesUpstream: identical answers from upstream with the stock
// Corefile and ours with the stock Corefile, with the stock Corefile plus
// envalias (aliases must not change any stock name's answer), and with
// Corefile.example on its in-cluster listener (in-cluster clients keep stock
// answers while the VPC listener serves pod IPs).
func TestDropInMatchesUpstream(t *testing.T) {
	w := setUp(t)
	for _, variant := range []struct {
		name  string
		start func(*testing.T) server
	}{
		{"stock Corefile", func(t *testing.T) server { return w.startCoreDNS(t, w.OurBin, "") }},
		{"stock Corefile with envalias", func(t *testing.T) server { return w.startCoreDNS(t, w.OurBin, "envalias stg prd") }},
		{"Corefile.example, in-cluster listener", w.startExample},
	} {
		t.Run(variant.name, func(t *testing.T) {
			// Fresh servers each time: both caches start empty, so cached
			// TTLs count down alike.
			upstream := w.startCoreDNS(t, w.upstreamBin, "")
			ours := variant.start(t)
			w.checkSane(t, upstream)
			for _, diff := range compare(t, w.queries(), upstream, ours) {
				t.Error(diff)
			}
		})
	}
}

// TestDifferentialCatchesChangedAnswers shows that the comparison has teeth:
// headlessonly, enabled for every client, changes the answer for a ClusterIP
// Service, and the differential test must report exactly that kind of change.
func TestDifferentialCatchesChangedAnswers(t *testing.T) {
	w := setUp(t)
	upstream := w.startCoreDNS(t, w.upstreamBin, "")
	ours := w.startCoreDNS(t, w.OurBin, "headlessonly")
	diffs := compare(t, w.queries(), upstream, ours)
	found := false
	for _, d := range diffs {
		if strings.Contains(d, "api.platform.svc.cluster.local. A ") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the comparison did not flag the changed answer for api.platform.svc.cluster.local A; diffs: %v", diffs)
	}
}

// checkSane guards the comparison against two servers that fail alike: the
// reference must really answer from the cluster and from the stub upstream.
func (w *world) checkSane(t *testing.T, s server) {
	t.Helper()
	for _, c := range []struct {
		q    query
		want string
	}{
		{query{name: "api.platform.svc.cluster.local.", qtype: dns.TypeA}, w.demo.APIClusterIP},
		{query{name: "db-0.db.platform.svc.cluster.local.", qtype: dns.TypeA}, "10.244.1.20"},
		{query{name: "docs.platform.svc.cluster.local.", qtype: dns.TypeA}, "192.0.2.80"},
		{query{name: "example.org.", qtype: dns.TypeA}, "192.0.2.1"},
	} {
		r, err := ask("udp", s.addr, c.q)
		if err != nil || !strings.Contains(fmt.Sprint(r.Answer), c.want) {
			t.Fatalf("%s: %s answered %v (%v), want %s in the answer", s.name, c.q, r, err, c.want)
		}
	}
}

// world is what every test here shares: the Env (control plane, our
// binary, Corefile.example) with the demo world, one stub upstream and
// upstream's binary.
type world struct {
	*cluster.Env
	demo        cluster.Demo
	dualIPs     []string
	stub        string // forward's target: the "internet" (see stubRecords)
	upstreamBin string
}

func setUp(t *testing.T) *world {
	t.Helper()
	return cluster.Setup(t, func(ctx context.Context, e *cluster.Env) (*world, error) {
		w := &world{Env: e}
		var err error
		if w.demo, err = cluster.SeedDemo(ctx, e.Cluster); err != nil {
			return nil, err
		}
		if w.dualIPs, err = seedDualStack(ctx, e.Cluster); err != nil {
			return nil, err
		}
		// Lives as long as the test binary.
		if w.stub, _, err = cluster.StubUpstream(stubRecords...); err != nil {
			return nil, err
		}
		w.upstreamBin, err = cluster.UpstreamCoreDNSBinary(ctx, e.Logf)
		return w, err
	})
}

// stubRecords are what the stub upstream behind forward knows, so that
// upstream names, CNAME chasing and reverse fallthrough are part of the
// comparison without any traffic leaving the machine.
var stubRecords = []string{
	"example.org. 300 IN SOA ns.example.org. host.example.org. 1 7200 3600 1209600 300",
	"example.org. 300 IN A 192.0.2.1",
	"example.org. 300 IN AAAA 2001:db8::1",
	"example.org. 300 IN MX 10 mail.example.org.",
	"example.org. 300 IN TXT \"v=spf1 -all\"",
	"mail.example.org. 300 IN A 192.0.2.25",
	"www.example.org. 300 IN CNAME example.org.",
	"docs.example.org. 300 IN A 192.0.2.80",
	"1.2.0.192.in-addr.arpa. 300 IN PTR example.org.",
}

// seedDualStack adds a dual-stack ClusterIP Service with IPv4 and IPv6
// endpoints, and returns its ClusterIPs.
func seedDualStack(ctx context.Context, c *cluster.Cluster) ([]string, error) {
	policy := corev1.IPFamilyPolicyRequireDualStack
	svc, err := c.CreateService(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "dual", Namespace: cluster.DemoNamespace},
		Spec: corev1.ServiceSpec{
			IPFamilyPolicy: &policy,
			Ports:          []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	})
	if err != nil {
		return nil, err
	}
	return svc.Spec.ClusterIPs, c.SetEndpoints(ctx, svc, []cluster.Endpoint{
		{IP: "10.244.5.50"}, {IP: "fd00:10:244::50"},
	}, nil)
}

// server is a running coredns and the addresses it answers on.
type server struct {
	name    string
	addr    string // the (in-cluster) DNS listener
	vpc     string // the VPC-facing listener, for Corefile.example
	metrics string // its prometheus URL
	stop    func()
}

// startCoreDNS runs bin with kubeadm's stock Corefile plus extra plugin lines.
func (w *world) startCoreDNS(t *testing.T, bin, extra string) server {
	t.Helper()
	name := "ours"
	if bin == w.upstreamBin {
		name = "upstream"
	}
	if extra != "" {
		name += " (+" + extra + ")"
	}
	return w.run(t, bin, name, func(p cluster.Ports) (string, error) {
		return cluster.StockCorefile(p, w.Kubeconfig, w.stub, extra), nil
	})
}

// startExample runs our coredns with Corefile.example, made local.
func (w *world) startExample(t *testing.T) server {
	t.Helper()
	return w.run(t, w.OurBin, "ours (Corefile.example)", cluster.LocalRenderer(w.Example, w.Kubeconfig, w.stub))
}

func (w *world) run(t *testing.T, bin, name string, corefile func(cluster.Ports) (string, error)) server {
	t.Helper()
	c := cluster.RunForTest(t, bin, corefile)
	return server{name: name, addr: c.Ports.DNSAddr(), vpc: c.Ports.VPCAddr(), metrics: c.Ports.MetricsURL(), stop: func() { c.Stop() }}
}
