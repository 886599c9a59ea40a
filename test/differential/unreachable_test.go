package differential

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warpdns/warpdns/test/cluster"
)

// TestStartWithoutAPIServer: started while the apiserver cannot be reached,
// ours behaves like upstream: both wait out the kubernetes plugin's startup
// timeout (5s, logged here, not asserted: timings belong to benchmarks), then
// listen; /ready stays not ready; cluster names (SERVFAIL) and upstream names
// get the same answers from both.
func TestStartWithoutAPIServer(t *testing.T) {
	w := setUp(t)
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	nowhere := filepath.Join(w.TempDir, "kubeconfig-nowhere")
	kubeconfig, err := os.ReadFile(w.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dead := strings.Replace(string(kubeconfig), w.Server, fmt.Sprintf("https://127.0.0.1:%d", ports[0]), 1)
	if err := os.WriteFile(nowhere, []byte(dead), 0o600); err != nil {
		t.Fatal(err)
	}

	type observed struct {
		listenAfter time.Duration
		ready       string
		answers     []string
	}
	observe := func(bin string) observed {
		p, err := cluster.FreePorts(4)
		if err != nil {
			t.Fatal(err)
		}
		corefile := cluster.StockCorefile(cluster.Ports{DNS: p[0], Health: p[1], Ready: p[2], Metrics: p[3]}, nowhere, w.stub, "")
		addr := fmt.Sprintf("127.0.0.1:%d", p[0])
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		started := time.Now()
		proc, err := cluster.StartCoreDNS(ctx, bin, corefile, w.TempDir, cluster.DNSAnswers(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer proc.Stop()
		var o observed
		o.listenAfter = time.Since(started)
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", p[2]))
		if err != nil {
			o.ready = err.Error()
		} else {
			o.ready = resp.Status
			resp.Body.Close()
		}
		for _, q := range []query{
			{name: "api.platform.svc.cluster.local.", qtype: dns.TypeA},
			{name: "cluster.local.", qtype: dns.TypeSOA},
			{name: "example.org.", qtype: dns.TypeA},
		} {
			r, err := ask("udp", addr, q)
			if err != nil {
				o.answers = append(o.answers, q.String()+": "+err.Error())
				continue
			}
			o.answers = append(o.answers, q.String()+": "+dns.RcodeToString[r.Rcode]+fmt.Sprint(len(r.Answer)))
		}
		return o
	}

	up, ours := observe(w.upstreamBin), observe(w.OurBin)
	t.Logf("upstream: listening after %v, /ready %s, %v", up.listenAfter.Round(time.Millisecond), up.ready, up.answers)
	t.Logf("ours:     listening after %v, /ready %s, %v", ours.listenAfter.Round(time.Millisecond), ours.ready, ours.answers)
	if up.ready == "200 OK" || ours.ready != up.ready {
		t.Errorf("/ready: upstream %q, ours %q; want both not ready", up.ready, ours.ready)
	}
	if fmt.Sprint(ours.answers) != fmt.Sprint(up.answers) {
		t.Errorf("answers differ:\nupstream %v\nours     %v", up.answers, ours.answers)
	}
}
