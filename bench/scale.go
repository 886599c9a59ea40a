package bench

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	Upstream bool
	Samples  []ScaleSample
}

// ScaleSample is one start-up.
type ScaleSample struct {
	RSS, RSSFile, HeapInuse int64 // RSSFile: the part of RSS that maps files (the binary)
	ToReady                 time.Duration
	Watches                 map[string]int // watches it opened on the apiserver, per resource
}

// scaleSetup is a ScaleSetup with what starts it.
type scaleSetup struct {
	ScaleSetup
	bin      string
	corefile func(cluster.Ports) (string, error)
}

// smallWorld is kubeadm's stock Corefile in a cluster of cfg.SmallServices
// Services: what a binary costs at rest, before any data. Besides the staged
// copies (see stage) it starts ours as the Go linker wrote it, which is
// what a freshly built bin/coredns is.
func (b *bencher) smallWorld(ctx context.Context) error {
	cfg := b.cfg
	s := &b.r.SmallWorld
	s.Namespaces = 1
	if err := b.c.EnsureNamespace(ctx, "small"); err != nil {
		return err
	}
	for i := range cfg.SmallServices {
		var ips []string
		for j := range cfg.EndpointsPerService {
			ips = append(ips, fmt.Sprintf("10.127.%d.%d", i, j+1))
		}
		if err := createScaleService(ctx, b.c.Client, "small", fmt.Sprintf("small-%d", i), ips); err != nil {
			return err
		}
	}
	all, err := b.c.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	// The apiserver's own `kubernetes` Service counts too.
	s.Services, s.Endpoints = len(all.Items), cfg.SmallServices*cfg.EndpointsPerService
	return b.startUps(ctx, "small world", s, []scaleSetup{
		{ScaleSetup{Name: "upstream, stock Corefile", Upstream: true}, b.upstream, b.files.stock},
		{ScaleSetup{Name: "ours, stock Corefile"}, b.ours, b.files.stock},
		{ScaleSetup{Name: "ours, stock Corefile, binary as the linker wrote it"}, b.linked, b.files.stock},
	})
}

func (b *bencher) scale(ctx context.Context) error {
	cfg, logf := b.cfg, b.cfg.Logf
	b.stopAll()
	s := &b.r.Scale
	s.Services, s.Endpoints, s.Namespaces = cfg.Services, cfg.Services*cfg.EndpointsPerService, cfg.Namespaces
	logf("scale: creating %d Services with %d endpoints each in %d namespaces", cfg.Services, cfg.EndpointsPerService, cfg.Namespaces)
	start := time.Now()
	if err := b.populate(ctx); err != nil {
		return err
	}
	s.Populate = time.Since(start)
	logf("scale: created in %v", s.Populate.Round(time.Second))
	return b.startUps(ctx, "scale", s, []scaleSetup{
		{ScaleSetup{Name: "upstream, stock Corefile", Upstream: true}, b.upstream, b.files.stock},
		{ScaleSetup{Name: "ours, stock Corefile"}, b.ours, b.files.stock},
		{ScaleSetup{Name: "ours, Corefile.example"}, b.ours, b.files.exampleLocal},
	})
}

// startUps starts each setup ScaleRounds times, one at a time, alternating
// the order.
func (b *bencher) startUps(ctx context.Context, phase string, s *Scale, setups []scaleSetup) error {
	cfg := b.cfg
	for round := range cfg.ScaleRounds {
		order := []int{0, 1, 2}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			st := &setups[i]
			sample, err := b.startUp(ctx, st.Name, st.bin, st.corefile)
			if err != nil {
				return err
			}
			st.Samples = append(st.Samples, sample)
			cfg.Logf("%s round %d/%d: %-26s ready in %v, RSS %.1f MiB (files %.1f MiB), heap in use %.1f MiB, watches %v", phase, round+1, cfg.ScaleRounds,
				st.Name, sample.ToReady.Round(time.Millisecond), mib(sample.RSS), mib(sample.RSSFile), mib(sample.HeapInuse), sample.Watches)
		}
	}
	for _, st := range setups {
		s.Setups = append(s.Setups, st.ScaleSetup)
	}
	return nil
}

// startUp starts one coredns, times it to ready, waits until the watches it
// opens have settled, reads its memory, and stops it again.
func (b *bencher) startUp(ctx context.Context, name, bin string, corefile func(cluster.Ports) (string, error)) (ScaleSample, error) {
	baseline, err := b.c.Watches()
	if err != nil {
		return ScaleSample{}, err
	}
	c, err := cluster.RunCoreDNS(ctx, cluster.RunOptions{Dir: b.cfg.Dir, Nice: b.cfg.Nice}, bin, corefile)
	if err != nil {
		return ScaleSample{}, fmt.Errorf("%s: %w", name, err)
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

// populate creates the Services and their EndpointSlices (one per Service,
// as the endpointslice controller writes them) with parallel workers and no
// client-side rate limit.
func (b *bencher) populate(ctx context.Context) error {
	cfg := b.cfg
	rc := rest.CopyConfig(b.c.RESTConfig)
	rc.QPS = -1 // no client-side limiter
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	for n := range cfg.Namespaces {
		if err := b.c.EnsureNamespace(ctx, scaleNamespace(n)); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	base := netip.MustParseAddr("10.128.0.0").As4()
	baseN := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.Services || ctx.Err() != nil {
					return
				}
				var ips []string
				for j := range cfg.EndpointsPerService {
					n := baseN + uint32(i*cfg.EndpointsPerService+j+1)
					ips = append(ips, netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).String())
				}
				if err := createScaleService(ctx, client, scaleNamespace(i%cfg.Namespaces), fmt.Sprintf("svc-%d", i), ips); err != nil {
					errOnce.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func scaleNamespace(n int) string { return fmt.Sprintf("scale-%d", n) }

func createScaleService(ctx context.Context, client kubernetes.Interface, ns, name string, ips []string) error {
	svc, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating Service %s/%s: %w", ns, name, err)
	}
	yes, no := true, false
	portName, proto, port := "http", corev1.ProtocolTCP, int32(80)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name + "-v4-0",
			Namespace: ns,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: name,
				discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Service", Name: name, UID: svc.UID, Controller: &yes, BlockOwnerDeletion: &yes,
			}},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Protocol: &proto, Port: &port}},
	}
	for j, ip := range ips {
		node := fmt.Sprintf("node-%d", j)
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: &yes, Serving: &yes, Terminating: &no},
			NodeName:   &node,
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: fmt.Sprintf("%s-%d", name, j)},
		})
	}
	if _, err := client.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating EndpointSlice %s/%s: %w", ns, slice.Name, err)
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
