// Package faults takes the control plane away under a running coredns: it
// must keep answering from its cache, and catch up once the control plane is
// back. It has its own control plane, so the other packages' tests never see
// it stop.
package faults

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warpdns/warpdns/test/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// TestServesThroughControlPlaneOutages: with kube-apiserver stopped, and then
// with etcd stopped behind a running apiserver, both listeners keep giving
// the same answers (no SERVFAIL); after each comes back, a change made
// through the API reaches the answers.
func TestServesThroughControlPlaneOutages(t *testing.T) {
	e := cluster.SharedEnv(t)
	c := e.Cluster
	coredns := e.RunExampleForTest(t, e.Example)
	inCluster, vpc := coredns.Ports.DNSAddr(), coredns.Ports.VPCAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	const ns = "faults"
	if err := c.EnsureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	svc, err := c.CreateService(ctx, cluster.ClusterIPService(ns, "api"))
	if err != nil {
		t.Fatal(err)
	}
	setPods := func(ips ...string) {
		t.Helper()
		var eps []cluster.Endpoint
		for _, ip := range ips {
			eps = append(eps, cluster.Endpoint{IP: ip})
		}
		if err := c.SetEndpoints(ctx, svc, eps, nil); err != nil {
			t.Fatal(err)
		}
	}
	name := "stg-api." + ns + ".svc.cluster.local."
	plain := "api." + ns + ".svc.cluster.local."
	setPods("10.40.0.1", "10.40.0.2")
	waitForPods(t, vpc, name, "10.40.0.1", "10.40.0.2")

	for _, outage := range []struct {
		what       string
		stop, back func(context.Context) error
	}{
		{"kube-apiserver stopped", func(context.Context) error { return c.StopAPIServer() }, c.StartAPIServer},
		{"etcd stopped behind a running kube-apiserver", func(context.Context) error { return c.StopEtcd() }, c.StartEtcd},
	} {
		t.Run(outage.what, func(t *testing.T) {
			before := map[string]string{vpc + " " + name: answer(t, vpc, name), inCluster + " " + plain: answer(t, inCluster, plain)}
			if err := outage.stop(ctx); err != nil {
				t.Fatal(err)
			}
			// Ask for a while during the outage: a cached answer must not
			// turn into SERVFAIL when the watch breaks or the informer
			// retries.
			deadline := time.Now().Add(5 * time.Second)
			asked := 0
			for time.Now().Before(deadline) {
				for key, want := range before {
					addr, qname, _ := strings.Cut(key, " ")
					if got := answer(t, addr, qname); got != want {
						t.Fatalf("during the outage %s answered %s, before %s", key, got, want)
					}
					asked++
				}
			}
			t.Logf("%s: %d queries during 5s, all answered as before", outage.what, asked)

			started := time.Now()
			if err := outage.back(ctx); err != nil {
				t.Fatal(err)
			}
			next := fmt.Sprintf("10.40.%d.1", time.Now().UnixNano()%200+1)
			setPods("10.40.0.1", next)
			waitForPods(t, vpc, name, "10.40.0.1", next)
			t.Logf("%s: back, and a change through the API answered %v after the restart began", outage.what, time.Since(started).Round(100*time.Millisecond))
		})
	}
}

// answer is the rcode and sorted addresses of an A query.
func answer(t *testing.T, addr, name string) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		return "error: " + err.Error()
	}
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	slices.Sort(ips)
	return dns.RcodeToString[r.Rcode] + fmt.Sprint(ips)
}

// waitForPods waits (client-go's reflector backs off while the control plane
// is away, up to about a minute) until name answers exactly ips.
func waitForPods(t *testing.T, addr, name string, ips ...string) {
	t.Helper()
	slices.Sort(ips)
	want := "NOERROR" + fmt.Sprint(ips)
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := answer(t, addr, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answers %s, want %s", name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
