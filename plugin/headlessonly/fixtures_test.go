package headlessonly

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync/atomic"

	"github.com/coredns/coredns/plugin/kubernetes"
	"github.com/coredns/coredns/plugin/kubernetes/object"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/warpdns/warpdns/internal/kubedns"

	"github.com/miekg/dns"
	api "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	meta "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// fakeConn stands in for the kubernetes plugin's informer cache. Its objects are built from real
// API objects with the cache's own converters (object.ToService, object.EndpointSliceToEndpoints),
// so readiness filtering is the cache's, not ours.
type fakeConn struct {
	kubedns.Controller // nil: what the kubernetes plugin does not call here panics
	svcs               []*object.Service
	eps                []*object.Endpoints
	modified           int64        // Modified(ModifiedInternal): 3, an instant long past, until a test moves it
	svcLookups         atomic.Int64 // SvcIndex calls: the kubernetes plugin looked something up
}

func (*fakeConn) HasSynced() bool { return true }

func (c *fakeConn) Modified(mode kubernetes.ModifiedMode) int64 {
	if mode != kubernetes.ModifiedInternal {
		return 0
	}
	return atomic.LoadInt64(&c.modified)
}

func (*fakeConn) GetNamespaceByName(name string) (*object.Namespace, error) {
	if name == "testns" || name == "other" {
		return &object.Namespace{Name: name}, nil
	}
	return nil, fmt.Errorf("namespace %q not found", name)
}

// The index functions return fresh slices, as the informer indexer does.
func (c *fakeConn) SvcIndex(key string) []*object.Service {
	c.svcLookups.Add(1)
	return filter(c.svcs, func(s *object.Service) bool { return s.Index == key })
}

func (c *fakeConn) SvcIndexReverse(ip string) []*object.Service {
	return filter(c.svcs, func(s *object.Service) bool { return slices.Contains(s.ClusterIPs, ip) })
}

func (c *fakeConn) EpIndex(key string) []*object.Endpoints {
	return filter(c.eps, func(e *object.Endpoints) bool { return e.Index == key })
}

func (c *fakeConn) EpIndexReverse(ip string) []*object.Endpoints {
	return filter(c.eps, func(e *object.Endpoints) bool { return slices.Contains(e.IndexIP, ip) })
}

func filter[T any](all []T, keep func(T) bool) (out []T) {
	for _, o := range all {
		if keep(o) {
			out = append(out, o)
		}
	}
	return out
}

// service converts an api.Service as the cache does. Its port "http" 80 has the targetPort "web",
// a named container port, as most Deployments have.
func service(name, ns string, typ api.ServiceType, clusterIPs ...string) *object.Service {
	s := &api.Service{
		ObjectMeta: meta.ObjectMeta{Name: name, Namespace: ns},
		Spec: api.ServiceSpec{
			Type:  typ,
			Ports: []api.ServicePort{{Name: "http", Port: 80, Protocol: api.ProtocolTCP, TargetPort: intstr.FromString("web")}},
		},
	}
	if len(clusterIPs) > 0 {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = clusterIPs[0], clusterIPs
	}
	if typ == api.ServiceTypeExternalName {
		s.Spec.ExternalName, s.Spec.Ports = "example.org", nil
	}
	o, err := object.ToService(s)
	if err != nil {
		panic(err)
	}
	return o.(*object.Service)
}

// endpoint is one EndpointSlice endpoint; ready is the condition as the controller writes it.
func endpoint(ready *bool, hostname string, addrs ...string) discovery.Endpoint {
	e := discovery.Endpoint{Addresses: addrs, Conditions: discovery.EndpointConditions{Ready: ready}}
	if hostname != "" {
		e.Hostname = &hostname
	}
	return e
}

// endpointSlice converts an EndpointSlice of svc as the cache does; its port "http" is 8080, the
// container port behind the Service's port 80.
func endpointSlice(name, svc, ns string, eps ...discovery.Endpoint) *object.Endpoints {
	port, portName, proto := int32(8080), "http", api.ProtocolTCP
	s := &discovery.EndpointSlice{
		ObjectMeta: meta.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discovery.LabelServiceName: svc}},
		Endpoints:  eps,
		Ports:      []discovery.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
	}
	o, err := object.EndpointSliceToEndpoints(s)
	if err != nil {
		panic(err)
	}
	return o.(*object.Endpoints)
}

var yes, no = new(true), new(false)

// newCluster returns the test cluster. With headless, every Service that has a ClusterIP is created
// headless instead: the cluster a stock CoreDNS would need to give the answers we want.
func newCluster(headless bool) *fakeConn {
	vip := func(ips ...string) []string {
		if headless {
			return []string{api.ClusterIPNone}
		}
		return ips
	}
	c := &fakeConn{
		modified: 3,
		svcs: []*object.Service{
			service("web", "testns", api.ServiceTypeClusterIP, vip("10.96.0.10")...),
			service("dual", "testns", api.ServiceTypeClusterIP, vip("10.96.0.20", "fd00::20")...),
			service("empty", "testns", api.ServiceTypeClusterIP, vip("10.96.0.30")...),
			service("noslice", "testns", api.ServiceTypeClusterIP, vip("10.96.0.31")...),
			service("np", "testns", api.ServiceTypeNodePort, vip("10.96.0.40")...),
			service("lb", "testns", api.ServiceTypeLoadBalancer, vip("10.96.0.41")...),
			service("big", "testns", api.ServiceTypeClusterIP, vip("10.96.0.50")...),
			service("hl", "testns", api.ServiceTypeClusterIP, api.ClusterIPNone),
			service("ext", "testns", api.ServiceTypeExternalName),
			service("web", "other", api.ServiceTypeClusterIP, vip("10.96.1.10")...),
		},
		eps: []*object.Endpoints{
			// Two slices; 10.1.0.2 is in both (an endpoint moving between slices), 10.1.0.9 is
			// not ready (e.g. terminating) and 10.1.0.2's condition is unknown (nil: ready).
			endpointSlice("web-a", "web", "testns",
				endpoint(yes, "", "10.1.0.1"), endpoint(nil, "", "10.1.0.2"), endpoint(no, "", "10.1.0.9")),
			endpointSlice("web-b", "web", "testns",
				endpoint(yes, "", "10.1.0.3"), endpoint(yes, "", "10.1.0.2")),
			endpointSlice("dual-v4", "dual", "testns", endpoint(yes, "", "10.2.0.1")),
			endpointSlice("dual-v6", "dual", "testns", endpoint(yes, "", "fd00:10::1")),
			endpointSlice("empty-a", "empty", "testns", endpoint(no, "", "10.5.0.1")),
			endpointSlice("np-a", "np", "testns", endpoint(yes, "", "10.6.0.1")),
			endpointSlice("lb-a", "lb", "testns", endpoint(yes, "", "10.6.0.2")),
			endpointSlice("hl-a", "hl", "testns", endpoint(yes, "hl-0", "10.3.0.1")),
			endpointSlice("web-x", "web", "other", endpoint(yes, "", "10.4.0.1")),
		},
	}
	// More than 100 endpoints: the endpointslice controller splits them over slices.
	big := make([][]discovery.Endpoint, 3)
	for i := range 250 {
		big[i/100] = append(big[i/100], endpoint(yes, "", fmt.Sprintf("10.7.%d.%d", i/100, i%100+1)))
	}
	for s, eps := range big {
		c.eps = append(c.eps, endpointSlice(fmt.Sprintf("big-%d", s), "big", "testns", eps...))
	}
	return c
}

// fakeUpstream resolves the ExternalName target.
type fakeUpstream struct{}

func (fakeUpstream) Lookup(_ context.Context, state request.Request, name string, typ uint16) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(name, typ)
	if typ == dns.TypeA && name == "example.org." {
		m.Answer = []dns.RR{test.A("example.org. 300 IN A 192.0.2.10")}
	}
	return m, nil
}

// newKubernetes returns a kubernetes plugin as setup would, reading conn. Its Next answers REFUSED
// with the "passed" marker so tests can tell a pass-through from an answer.
func newKubernetes(conn *fakeConn) *kubernetes.Kubernetes {
	k := kubernetes.New([]string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."})
	k.APIConn = conn
	k.Upstream = fakeUpstream{}
	k.Next = passed
	return k
}

var passed = test.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeRefused)
	m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"passed"}}}
	w.WriteMsg(m)
	return dns.RcodeRefused, nil
})

// newPlugin returns headlessonly in front of a kubernetes plugin over conn, as in plugin.cfg.
func newPlugin(conn *fakeConn) *HeadlessOnly {
	k := newKubernetes(conn)
	return &HeadlessOnly{Zones: []string{"cluster.local."}, Next: k, k: k}
}

// addrWriter is a test.ResponseWriter with a settable listener address.
type addrWriter struct {
	test.ResponseWriter
	local net.Addr
}

func (w *addrWriter) LocalAddr() net.Addr {
	if w.local != nil {
		return w.local
	}
	return w.ResponseWriter.LocalAddr()
}
