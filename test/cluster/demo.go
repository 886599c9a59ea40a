package cluster

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// DemoNamespace holds the demo world that `make run` and the tests share.
const DemoNamespace = "platform"

// Demo describes what SeedDemo created.
type Demo struct {
	APIClusterIP string   // the ClusterIP of Service api (unreachable over WARP)
	APIReadyIPs  []string // its ready endpoints (pod IPs, reachable over WARP)
}

// SeedDemo creates namespace platform with:
//   - api: ClusterIP, port http 80 -> 8080 and grpc 9090 -> named "grpc"
//     (9091), two ready endpoints and one not ready;
//   - db: headless, endpoints with hostnames db-0 and db-1;
//   - docs: ExternalName for docs.example.org;
//   - web: ClusterIP whose ports target named container ports.
func SeedDemo(ctx context.Context, c *Cluster) (Demo, error) {
	if err := c.EnsureNamespace(ctx, DemoNamespace); err != nil {
		return Demo{}, err
	}
	tcp := corev1.ProtocolTCP
	type seed struct {
		svc   *corev1.Service
		eps   []Endpoint
		named map[string]int32
	}
	seeds := []seed{
		{
			svc: service("api", corev1.ServiceSpec{
				Selector: map[string]string{"app": "api"},
				Ports: []corev1.ServicePort{
					{Name: "http", Protocol: tcp, Port: 80, TargetPort: intstr.FromInt32(8080)},
					{Name: "grpc", Protocol: tcp, Port: 9090, TargetPort: intstr.FromString("grpc")},
				},
			}),
			eps: []Endpoint{
				{IP: "10.244.1.10", Pod: "api-5d8f7-x2k4p", NodeName: "node-a"},
				{IP: "10.244.2.11", Pod: "api-5d8f7-q9w7z", NodeName: "node-b"},
				{IP: "10.244.3.12", Pod: "api-5d8f7-m3n8v", NodeName: "node-c", NotReady: true},
			},
			named: map[string]int32{"grpc": 9091},
		},
		{
			svc: service("db", corev1.ServiceSpec{
				ClusterIP: corev1.ClusterIPNone,
				Selector:  map[string]string{"app": "db"},
				Ports:     []corev1.ServicePort{{Name: "postgres", Protocol: tcp, Port: 5432}},
			}),
			eps: []Endpoint{
				{IP: "10.244.1.20", Hostname: "db-0", Pod: "db-0", NodeName: "node-a"},
				{IP: "10.244.2.21", Hostname: "db-1", Pod: "db-1", NodeName: "node-b"},
			},
		},
		{
			svc: service("docs", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "docs.example.org"}),
		},
		{
			svc: service("web", corev1.ServiceSpec{
				Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{
					{Name: "http", Protocol: tcp, Port: 80, TargetPort: intstr.FromString("http-web")},
					{Name: "https", Protocol: tcp, Port: 443, TargetPort: intstr.FromString("https-web")},
				},
			}),
			eps: []Endpoint{
				{IP: "10.244.1.30", Pod: "web-6c4b9-h7j2k", NodeName: "node-a"},
				{IP: "10.244.2.31", Pod: "web-6c4b9-p5r8t", NodeName: "node-b"},
			},
			named: map[string]int32{"http-web": 8081, "https-web": 8443},
		},
	}

	var demo Demo
	for _, s := range seeds {
		svc, err := c.CreateService(ctx, s.svc)
		if err != nil {
			return Demo{}, err
		}
		if s.eps != nil {
			if err := c.SetEndpoints(ctx, svc, s.eps, s.named); err != nil {
				return Demo{}, err
			}
		}
		if svc.Name == "api" {
			demo.APIClusterIP = svc.Spec.ClusterIP
			for _, ep := range s.eps {
				if !ep.NotReady {
					demo.APIReadyIPs = append(demo.APIReadyIPs, ep.IP)
				}
			}
		}
	}
	return demo, nil
}

func service(name string, spec corev1.ServiceSpec) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: DemoNamespace}, Spec: spec}
}
