// Command demo is `make run`: it starts a real local Kubernetes control plane
// (or uses the cluster of -kubeconfig), creates a small demo world, runs our
// coredns with Corefile.example on loopback and prints dig commands to try.
// Ctrl-C stops everything it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/warpdns/warpdns/test/cluster"
)

type config struct {
	coredns    string // our binary
	corefile   string // the production Corefile to run locally
	kubeconfig string // a real cluster; empty: start a local one
	port       int    // in-cluster listener (stands in for :53)
	vpcPort    int    // VPC-facing listener (stands in for :5353)
	upstream   string // forward target for non-cluster names
}

func main() {
	var cfg config
	flag.StringVar(&cfg.coredns, "coredns", "bin/coredns", "our coredns binary")
	flag.StringVar(&cfg.corefile, "corefile", "Corefile.example", "Corefile to run (production shape)")
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", "", "serve this cluster instead of starting a local one")
	flag.IntVar(&cfg.port, "port", 1053, "loopback port for the in-cluster listener (:53 in a pod)")
	flag.IntVar(&cfg.vpcPort, "vpc-port", 1054, "loopback port for the VPC-facing listener (:5353 in a pod)")
	flag.StringVar(&cfg.upstream, "upstream", "/etc/resolv.conf", "where forward sends non-cluster names")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := start(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "make run:", err)
		if d != nil {
			d.stop()
		}
		os.Exit(1)
	}
	fmt.Println("\nRunning. Ctrl-C stops coredns and the control plane.")
	<-ctx.Done()
	fmt.Println("\nstopping...")
	d.stop()
	fmt.Println("stopped; nothing left running.")
}

// demo is what start started, to be stopped in reverse order.
type demo struct {
	cluster *cluster.Cluster
	coredns *cluster.CoreDNS
	dir     string
}

func (d *demo) stop() {
	if d.coredns != nil {
		d.coredns.Stop()
	}
	if d.cluster != nil {
		d.cluster.Stop()
	}
	os.RemoveAll(d.dir)
}

func start(ctx context.Context, cfg config, out io.Writer) (*demo, error) {
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	d := &demo{}
	var err error
	if d.dir, err = os.MkdirTemp("", "warpdns-run-"); err != nil {
		return nil, err
	}

	kubeconfig := cfg.kubeconfig
	var seeded *cluster.Demo
	if kubeconfig == "" {
		step("starting a local control plane (etcd %s, kube-apiserver %s)", cluster.EtcdVersion, cluster.KubernetesVersion)
		d.cluster, err = cluster.Start(ctx, cluster.Options{Logf: step, Dir: filepath.Join(d.dir, "cluster")})
		if err != nil {
			return d, err
		}
		kubeconfig = d.cluster.Kubeconfig
		step("creating the demo world in namespace %s", cluster.DemoNamespace)
		world, err := cluster.SeedDemo(ctx, d.cluster)
		if err != nil {
			return d, err
		}
		seeded = &world
	} else {
		step("serving the cluster of %s (no local control plane)", kubeconfig)
	}

	ports, err := cluster.FreePorts(3)
	if err != nil {
		return d, err
	}
	example, err := os.ReadFile(cfg.corefile)
	if err != nil {
		return d, err
	}
	corefile, err := cluster.RenderLocal(string(example), cluster.LocalCorefile{
		InClusterPort: cfg.port, VPCPort: cfg.vpcPort,
		HealthPort: ports[0], ReadyPort: ports[1], MetricsPort: ports[2],
		Kubeconfig: kubeconfig, Upstream: cfg.upstream,
	})
	if err != nil {
		return d, fmt.Errorf("%s: %w", cfg.corefile, err)
	}
	step("starting %s with %s on 127.0.0.1:%d (in-cluster) and 127.0.0.1:%d (VPC-facing)", cfg.coredns, cfg.corefile, cfg.port, cfg.vpcPort)
	d.coredns, err = cluster.StartCoreDNS(ctx, cfg.coredns, corefile, d.dir, cluster.AllReady(
		cluster.HTTPReady(fmt.Sprintf("http://127.0.0.1:%d/ready", ports[1])),
		cluster.DNSAnswers(fmt.Sprintf("127.0.0.1:%d", cfg.port)),
		cluster.DNSAnswers(fmt.Sprintf("127.0.0.1:%d", cfg.vpcPort)),
	))
	if err != nil {
		return d, err
	}
	step("coredns is ready; its Corefile and log are in %s", d.coredns.Dir)
	printTries(out, cfg, seeded)
	return d, nil
}

// try is one dig line printed for the user, with what it shows.
type try struct {
	port  int
	qtype string
	name  string
	shows string
}

// printTries prints each dig command with the answer our server gives now,
// so the first run shows at once that it works.
func printTries(out io.Writer, cfg config, seeded *cluster.Demo) {
	if seeded != nil {
		fmt.Fprintf(out, "\nService api: ClusterIP %s, ready pods %s\n", seeded.APIClusterIP, strings.Join(seeded.APIReadyIPs, ", "))
	}
	fmt.Fprintln(out, "\nTry:")
	const svc = "platform.svc.cluster.local"
	for _, t := range []try{
		{cfg.port, "A", "api." + svc, "in-cluster path: the ClusterIP, as stock CoreDNS answers"},
		{cfg.vpcPort, "A", "api." + svc, "VPC path: the ready pod IPs instead (headlessonly)"},
		{cfg.vpcPort, "A", "stg-api." + svc, "the name the resolver policy sends: pod IPs, asked name kept (envalias)"},
		{cfg.vpcPort, "SRV", "_http._tcp.stg-api." + svc, "SRV: the pods' targetPort 8080, targets under stg-api"},
		{cfg.vpcPort, "A", "db." + svc, "a headless Service: its pods, on either path"},
		{cfg.port, "CNAME", "docs." + svc, "an ExternalName Service"},
		{cfg.vpcPort, "A", "prd-api." + svc, "another environment's name: NXDOMAIN here"},
	} {
		fmt.Fprintf(out, "\n  # %s\n  dig @127.0.0.1 -p %d %s %s +short\n", t.shows, t.port, t.name, t.qtype)
		answer, err := shortAnswer(t)
		if err != nil {
			fmt.Fprintf(out, "    (%v)\n", err)
			continue
		}
		fmt.Fprintf(out, "    %s\n", strings.ReplaceAll(answer, "\n", "\n    "))
	}
}

func shortAnswer(t try) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(t.name), dns.StringToType[t.qtype])
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, fmt.Sprintf("127.0.0.1:%d", t.port))
	if err != nil {
		return "", err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return "", errors.New(dns.RcodeToString[r.Rcode] + ", no answer")
	}
	var lines []string
	for _, rr := range r.Answer {
		fields := strings.SplitN(rr.String(), "\t", 5)
		lines = append(lines, fields[len(fields)-1])
	}
	return strings.Join(lines, "\n"), nil
}
