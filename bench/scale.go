package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Scale is the memory and startup measurement with many Services.
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
	RSS, HeapInuse int64
	ToReady        time.Duration
	Watches        map[string]int // watches it opened on the apiserver, per resource
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

	httpc, err := rest.HTTPClientFor(b.c.RESTConfig)
	if err != nil {
		return err
	}
	setups := []struct {
		ScaleSetup
		bin      string
		corefile func(ports) (string, error)
	}{
		{ScaleSetup{Name: "upstream, stock Corefile", Upstream: true}, b.upstream, b.files.stock},
		{ScaleSetup{Name: "ours, stock Corefile"}, b.ours, b.files.stock},
		{ScaleSetup{Name: "ours, Corefile.example"}, b.ours, b.files.exampleLocal},
	}
	for round := range cfg.ScaleRounds {
		order := []int{0, 1, 2}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			st := &setups[i]
			sample, err := b.startUp(ctx, httpc, st.Name, st.bin, st.corefile)
			if err != nil {
				return err
			}
			st.Samples = append(st.Samples, sample)
			logf("scale round %d/%d: %-26s ready in %v, RSS %.1f MiB, heap in use %.1f MiB, watches %v", round+1, cfg.ScaleRounds,
				st.Name, sample.ToReady.Round(time.Millisecond), mib(sample.RSS), mib(sample.HeapInuse), sample.Watches)
		}
	}
	for _, st := range setups {
		s.Setups = append(s.Setups, st.ScaleSetup)
	}
	return nil
}

// startUp starts one coredns, times it to ready, waits until the watches it
// opens stop changing (at least 2 s: the informers have synced and settled),
// reads its memory, and stops it again.
func (b *bencher) startUp(ctx context.Context, httpc *http.Client, name, bin string, corefile func(ports) (string, error)) (ScaleSample, error) {
	baseline, err := apiserverWatches(httpc, b.c.Server)
	if err != nil {
		return ScaleSample{}, err
	}
	srv, err := startServer(ctx, b.cfg.Dir, b.cfg.Nice, name, bin, corefile)
	if err != nil {
		return ScaleSample{}, err
	}
	defer srv.stop()
	sample := ScaleSample{ToReady: srv.toReady}

	stableSince := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		now, err := apiserverWatches(httpc, b.c.Server)
		if err != nil {
			return sample, err
		}
		now = subtract(now, baseline)
		if fmt.Sprint(now) != fmt.Sprint(sample.Watches) {
			sample.Watches, stableSince = now, time.Now()
		}
		if len(sample.Watches) > 0 && time.Since(stableSince) > 2*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Five readings 200 ms apart; the median of each.
	var rss, heap []int64
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", srv.ports.metrics)
	for range 5 {
		r, err := srv.proc.rss()
		if err != nil {
			return sample, err
		}
		m, err := metrics(url, "go_memstats_heap_inuse_bytes")
		if err != nil {
			return sample, err
		}
		rss, heap = append(rss, r), append(heap, int64(m["go_memstats_heap_inuse_bytes"]))
		time.Sleep(200 * time.Millisecond)
	}
	sample.RSS, sample.HeapInuse = medianInt(rss), medianInt(heap)

	srv.stop()
	for time.Now().Before(deadline.Add(30 * time.Second)) {
		now, err := apiserverWatches(httpc, b.c.Server)
		if err != nil {
			return sample, err
		}
		if len(subtract(now, baseline)) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return sample, nil
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

// apiserverWatches reads apiserver_longrunning_requests{verb="WATCH"} from
// the apiserver's metrics, per resource (as test/differential does).
func apiserverWatches(httpc *http.Client, server string) (map[string]int, error) {
	resp, err := httpc.Get(server + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("apiserver /metrics: %s", resp.Status)
	}
	watches := map[string]int{}
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if !strings.HasPrefix(line, "apiserver_longrunning_requests{") || !strings.Contains(line, `verb="WATCH"`) {
			continue
		}
		labels, value, _ := strings.Cut(line[len("apiserver_longrunning_requests{"):], "} ")
		n, err := strconv.ParseFloat(value, 64)
		if err != nil || n == 0 {
			continue
		}
		watches[label(labels, "resource")] += int(n)
	}
	return watches, scanner.Err()
}

func label(labels, name string) string {
	_, rest, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	value, _, _ := strings.Cut(rest, `"`)
	return value
}

func subtract(now, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range now {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func medianInt(v []int64) int64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
