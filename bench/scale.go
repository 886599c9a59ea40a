package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/warpdns/warpdns/test/cluster"
)

// Scale is a memory and startup measurement: a number of Services, and
// each setup started ScaleRounds times.
type Scale struct {
	Services, Endpoints, Namespaces int
	Populate                        time.Duration // creating them through the API
	Setups                          []ScaleSetup
}

// ScaleSetup is one binary and Corefile, started ScaleRounds times.
type ScaleSetup struct {
	Name     string
	Samples  []ScaleSample
	bin      string
	corefile corefile
}

// ScaleSample is one start-up.
type ScaleSample struct {
	RSS, RSSFile, HeapInuse int64 // RSSFile: the part of RSS that maps files (the binary)
	ToReady                 time.Duration
	Watches                 map[string]int // watches it opened on the apiserver, per resource
}

// smallWorld is kubeadm's stock Corefile in a cluster of cfg.SmallServices
// Services: what a binary costs at rest, before any data. Besides the staged
// copies (see stage) it starts ours as the Go linker wrote it, which is
// what a freshly built bin/coredns is.
func (b *bencher) smallWorld(ctx context.Context) error {
	cfg := b.cfg
	if err := b.c.EnsureNamespace(ctx, "small"); err != nil {
		return err
	}
	if err := b.createServices(ctx, cfg.SmallServices, func(int) string { return "small" }, "small-%d",
		func(i, j int) string { return fmt.Sprintf("10.127.%d.%d", i, j+1) }); err != nil {
		return err
	}
	// The apiserver creates its own `kubernetes` Service shortly after it
	// starts; it counts too, so wait for it: every run then has the same world.
	services := b.c.Client.CoreV1().Services
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("the apiserver's kubernetes Service: %w", err)
	}
	all, err := services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	b.r.SmallWorld = Scale{Services: len(all.Items), Endpoints: cfg.SmallServices * cfg.EndpointsPerService, Namespaces: 1}
	return b.startUps(ctx, "small world", &b.r.SmallWorld, []ScaleSetup{
		{Name: "upstream, stock Corefile", bin: b.upstream, corefile: b.files.stock},
		{Name: "ours, stock Corefile", bin: b.ours, corefile: b.files.stock},
		{Name: "ours, stock Corefile, binary as the linker wrote it", bin: b.linked, corefile: b.files.stock},
	})
}

func (b *bencher) scale(ctx context.Context) error {
	cfg, logf := b.cfg, b.cfg.Logf
	b.stopAllBut(nil)
	s := &b.r.Scale
	s.Services, s.Endpoints, s.Namespaces = cfg.Services, cfg.Services*cfg.EndpointsPerService, cfg.Namespaces
	logf("scale: creating %d Services with %d endpoints each in %d namespaces", cfg.Services, cfg.EndpointsPerService, cfg.Namespaces)
	start := time.Now()
	for n := range cfg.Namespaces {
		if err := b.c.EnsureNamespace(ctx, scaleNamespace(n)); err != nil {
			return err
		}
	}
	err := b.createServices(ctx, cfg.Services, func(i int) string { return scaleNamespace(i % cfg.Namespaces) }, "svc-%d", func(i, j int) string {
		n := i*cfg.EndpointsPerService + j + 1 // after 10.128.0.0
		return fmt.Sprintf("10.%d.%d.%d", 128+(n>>16), (n>>8)&0xff, n&0xff)
	})
	if err != nil {
		return err
	}
	s.Populate = time.Since(start)
	logf("scale: created in %v", s.Populate.Round(time.Second))
	return b.startUps(ctx, "scale", s, []ScaleSetup{
		{Name: "upstream, stock Corefile", bin: b.upstream, corefile: b.files.stock},
		{Name: "ours, stock Corefile", bin: b.ours, corefile: b.files.stock},
		{Name: "ours, Corefile.example", bin: b.ours, corefile: b.files.example},
	})
}

// startUps starts each setup ScaleRounds times, one at a time, alternating
// the order.
func (b *bencher) startUps(ctx context.Context, phase string, s *Scale, setups []ScaleSetup) error {
	cfg := b.cfg
	for round := range cfg.ScaleRounds {
		order := []int{0, 1, 2}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			st := &setups[i]
			sample, err := b.startUp(ctx, st)
			if err != nil {
				return err
			}
			st.Samples = append(st.Samples, sample)
			cfg.Logf("%s round %d/%d: %-26s ready in %v, RSS %.1f MiB (files %.1f MiB), heap in use %.1f MiB, watches %v", phase, round+1, cfg.ScaleRounds,
				st.Name, sample.ToReady.Round(time.Millisecond), mib(sample.RSS), mib(sample.RSSFile), mib(sample.HeapInuse), sample.Watches)
		}
	}
	s.Setups = setups
	return nil
}

// startUp starts one coredns, times it to ready, waits until the watches it
// opens have settled, reads its memory, and stops it again.
func (b *bencher) startUp(ctx context.Context, st *ScaleSetup) (ScaleSample, error) {
	baseline, err := b.c.Watches()
	if err != nil {
		return ScaleSample{}, err
	}
	c, err := cluster.RunCoreDNS(ctx, cluster.RunOptions{Dir: b.cfg.Dir, Nice: b.cfg.Nice}, st.bin, st.corefile)
	if err != nil {
		return ScaleSample{}, fmt.Errorf("%s: %w", st.Name, err)
	}
	defer c.Kill()
	sample := ScaleSample{ToReady: c.ToReady}
	if sample.Watches, err = b.c.SettledWatches(ctx, baseline); err != nil {
		return sample, err
	}
	// Five readings 200 ms apart; the median of each.
	var rss, files, heap []int64
	for range 5 {
		r, f, err := c.Memory()
		if err != nil {
			return sample, err
		}
		m, err := cluster.ScrapeValues(c.Ports.MetricsURL(), "go_memstats_heap_inuse_bytes")
		if err != nil {
			return sample, err
		}
		rss, files, heap = append(rss, r), append(files, f), append(heap, int64(m["go_memstats_heap_inuse_bytes"]))
		time.Sleep(200 * time.Millisecond)
	}
	sample.RSS, sample.RSSFile, sample.HeapInuse = Median(rss), Median(files), Median(heap)
	c.Kill()
	return sample, b.c.WatchesClosed(ctx, baseline)
}

// createServices creates count Services (name with %d for i, in namespace
// ns(i), port http 80) and their EndpointSlices (one per Service, as the
// endpointslice controller writes them: a ready endpoint at ip(i, j), pod
// NAME-j on node-j) with 32 parallel workers and no client-side rate limit.
func (b *bencher) createServices(ctx context.Context, count int, ns func(i int) string, name string, ip func(i, j int) string) error {
	rc := rest.CopyConfig(b.c.RESTConfig)
	rc.QPS = -1 // no client-side limiter
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	fast := *b.c
	var err error
	if fast.Client, err = kubernetes.NewForConfig(rc); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range count {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf(name, i), Namespace: ns(i)},
				Spec: corev1.ServiceSpec{
					Selector: map[string]string{"app": fmt.Sprintf(name, i)},
					Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
				},
			}
			var ips []string
			for j := range b.cfg.EndpointsPerService {
				ips = append(ips, ip(i, j))
			}
			if _, err := createService(ctx, &fast, svc, ips, func(j int) string { return fmt.Sprintf("node-%d", j) }); err != nil {
				return fmt.Errorf("creating Service %s/%s and its EndpointSlice: %w", svc.Namespace, svc.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func scaleNamespace(n int) string { return fmt.Sprintf("scale-%d", n) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
