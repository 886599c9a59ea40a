package bench

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/warpdns/warpdns/test/cluster"
)

// benchNS holds the Services the throughput and propagation phases query.
const benchNS = "platform"

// seedWorld creates what the throughput and propagation phases query and
// returns the flippers of the propagation phase:
//   - api: ClusterIP, port http 80 -> 8080, N ready endpoints; ours answers
//     stg-api.platform.svc.cluster.local on the VPC listener with them;
//   - api-headless: headless, the same port and the same N endpoints: the
//     Service upstream needs to give the same answer;
//   - ten: ClusterIP with the same N endpoints, annotated for k8s_gateway to
//     answer with its ready pod IPs; tenhl: the same, headless. The
//     saturated plain-block rows ask stg-ten (ours), tenhl (upstream) and
//     ten (k8s_gateway);
//   - flip-K: ClusterIP Services with N ready endpoints whose first endpoint
//     the propagation phase flips between ready and not ready.
func seedWorld(ctx context.Context, c *cluster.Cluster, endpoints, flipServices int) ([]*flipper, error) {
	if err := c.EnsureNamespace(ctx, benchNS); err != nil {
		return nil, err
	}
	ips := func(block int) []string {
		var out []string
		for i := range endpoints {
			out = append(out, fmt.Sprintf("10.244.%d.%d", block, i+1))
		}
		return out
	}
	// k8s_gateway's opt-in to pod IPs (its README, "Endpoint Resolution").
	gatewayEndpoints := map[string]string{"k8s-gateway.dns/resolve-endpoints": "true"}
	nodeA := func(int) string { return "node-a" }
	for _, svc := range []*corev1.Service{
		benchService("api", "", nil), benchService("api-headless", corev1.ClusterIPNone, nil),
		benchService("ten", "", gatewayEndpoints), benchService("tenhl", corev1.ClusterIPNone, nil),
	} {
		if _, err := createService(ctx, c, svc, ips(0), nodeA); err != nil {
			return nil, err
		}
	}
	var flips []*flipper
	for k := range flipServices {
		name, all := fmt.Sprintf("flip-%d", k), ips(k+1)
		if _, err := createService(ctx, c, benchService(name, "", nil), all, nodeA); err != nil {
			return nil, err
		}
		slice, err := c.Client.DiscoveryV1().EndpointSlices(benchNS).Get(ctx, name+"-v4-0", metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		flips = append(flips, &flipper{qname: "stg-" + name + "." + benchNS + ".svc.cluster.local.", slice: slice, all: all})
	}
	return flips, nil
}

// benchService has port http 80 -> 8080 (headless if clusterIP is "None").
func benchService(name, clusterIP string, annotations map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNS, Annotations: annotations},
		Spec: corev1.ServiceSpec{
			ClusterIP: clusterIP,
			Selector:  map[string]string{"app": name},
			Ports:     []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
}

// createService creates svc and its EndpointSlice as the controller would,
// one ready endpoint per ip: pod NAME-i on node(i).
func createService(ctx context.Context, c *cluster.Cluster, svc *corev1.Service, ips []string, node func(int) string) (*corev1.Service, error) {
	svc, err := c.CreateService(ctx, svc)
	if err != nil {
		return nil, err
	}
	var eps []cluster.Endpoint
	for i, ip := range ips {
		eps = append(eps, cluster.Endpoint{IP: ip, Pod: fmt.Sprintf("%s-%d", svc.Name, i), NodeName: node(i)})
	}
	return svc, c.SetEndpoints(ctx, svc, eps, nil)
}

// flipper flips the readiness of the first endpoint of one Service's
// EndpointSlice, with one Update per flip (what the endpointslice controller
// writes when a pod's Ready condition changes).
type flipper struct {
	qname string // the VPC-path name: stg-flip-K.platform.svc.cluster.local.
	slice *discoveryv1.EndpointSlice
	all   []string
	down  bool // the first endpoint is not ready
}

// next returns the slice with the first endpoint flipped, and the A records
// the VPC listener must answer once it has seen it.
func (f *flipper) next() (*discoveryv1.EndpointSlice, []string) {
	s := f.slice.DeepCopy()
	ready := f.down
	s.Endpoints[0].Conditions.Ready, s.Endpoints[0].Conditions.Serving = &ready, &ready
	return s, f.answer(!f.down)
}

// answer is what the VPC listener answers with the first endpoint down or not.
func (f *flipper) answer(down bool) []string {
	want := slices.Clone(f.all)
	if down {
		want = want[1:]
	}
	slices.Sort(want)
	return want
}

// update writes s and remembers the result for the next flip.
func (f *flipper) update(ctx context.Context, c *cluster.Cluster, s *discoveryv1.EndpointSlice) error {
	updated, err := c.Client.DiscoveryV1().EndpointSlices(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	f.slice, f.down = updated, !f.down
	return nil
}
