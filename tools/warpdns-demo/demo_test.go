package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warpdns/warpdns/test/cluster"
)

// TestMakeRun runs what `make run` runs, against a freshly built coredns and
// Corefile.example, and checks the printed tries and a real dig.
func TestMakeRun(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	bin, err := cluster.BuildOurCoreDNS(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ports, err := cluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{
		coredns:  bin,
		corefile: filepath.Join(root, "Corefile.example"),
		port:     ports[0],
		vpcPort:  ports[1],
		upstream: "127.0.0.1:9", // nothing listens: no traffic leaves loopback
	}
	var out bytes.Buffer
	d, err := start(ctx, cfg, &out)
	if d != nil {
		defer d.stop()
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	printed := out.String()
	t.Log(printed)

	clusterIP := between(printed, "ClusterIP ", ",")
	for _, want := range []string{
		"dig @127.0.0.1 -p " + strconv.Itoa(cfg.port) + " api.platform.svc.cluster.local A +short\n    " + clusterIP,
		"dig @127.0.0.1 -p " + strconv.Itoa(cfg.vpcPort) + " stg-api.platform.svc.cluster.local A +short\n    10.244.",
		"dig @127.0.0.1 -p " + strconv.Itoa(cfg.vpcPort) + " api.platform.svc.cluster.local A +short\n    10.244.",
	} {
		if !strings.Contains(printed, want) {
			t.Errorf("make run's output lacks %q", want)
		}
	}

	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig is not installed (apt-get install dnsutils); the printed answers above were checked with miekg/dns")
	}
	got, err := exec.Command(dig, "@127.0.0.1", "-p", strconv.Itoa(cfg.port), "api.platform.svc.cluster.local", "+short").CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != clusterIP {
		t.Errorf("dig api.platform.svc.cluster.local = %q (%v), want %s", got, err, clusterIP)
	}
}

func between(s, start, end string) string {
	_, after, _ := strings.Cut(s, start)
	before, _, _ := strings.Cut(after, end)
	return before
}
