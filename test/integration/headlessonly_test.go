package integration

import (
	"context"
	"fmt"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/warpdns/warpdns/test/cluster"
)

// TestVPCPathAnswersPodIPs: the same name gets the ClusterIP in-cluster and
// the ready pod IPs on the VPC listener; not-ready and terminating pods are
// left out, publishNotReadyAddresses puts them back.
func TestVPCPathAnswersPodIPs(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-basic")
	svc := e.service(t, clusterIPService(ns, "api"), []cluster.Endpoint{
		{IP: "10.10.0.1"}, {IP: "10.10.0.2"},
		{IP: "10.10.0.3", NotReady: true},
		{IP: "10.10.0.4", Terminating: true},
	}, nil)
	pub := clusterIPService(ns, "pub")
	pub.Spec.PublishNotReadyAddresses = true
	e.service(t, pub, []cluster.Endpoint{{IP: "10.10.1.1"}, {IP: "10.10.1.2", NotReady: true}}, nil)

	name := "api." + ns + ".svc.cluster.local."
	eventually(t, "VPC path answers the ready pods", func() error {
		if got := addresses(ask(t, e.vpc, name, dns.TypeA).Answer); fmt.Sprint(got) != "[10.10.0.1 10.10.0.2]" {
			return fmt.Errorf("got %v", got)
		}
		return nil
	})
	wantAddrs(t, "in-cluster path", ask(t, e.inCluster, name, dns.TypeA), svc.Spec.ClusterIP)
	wantAddrs(t, "publishNotReadyAddresses", ask(t, e.vpc, "pub."+ns+".svc.cluster.local.", dns.TypeA), "10.10.1.1", "10.10.1.2")
	if r := ask(t, e.vpc, name, dns.TypeAAAA); rcode(r) != "NOERROR" || len(r.Answer) != 0 || len(r.Ns) == 0 {
		t.Errorf("AAAA of an IPv4-only Service: want NODATA with SOA, got\n%v", r)
	}
	// An endpoint name of a ClusterIP Service resolves too.
	wantAddrs(t, "endpoint name", ask(t, e.vpc, "10-10-0-1."+name, dns.TypeA), "10.10.0.1")
}

// TestVPCPathMultiSliceAndTruncation: 300 endpoints in three slices; over UDP
// the reply fits the client's buffer and sets TC, over TCP it is complete.
func TestVPCPathMultiSliceAndTruncation(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-big")
	var eps []cluster.Endpoint
	for i := range 300 {
		eps = append(eps, cluster.Endpoint{IP: fmt.Sprintf("10.11.%d.%d", i/250, i%250+1)})
	}
	e.service(t, clusterIPService(ns, "big"), eps, nil)
	name := "big." + ns + ".svc.cluster.local."
	eventually(t, "TCP returns all 300", func() error {
		if n := len(query(t, e.vpc, "tcp", name, dns.TypeA, 0).Answer); n != 300 {
			return fmt.Errorf("%d answers", n)
		}
		return nil
	})
	for _, bufsize := range []uint16{0, 1232, 4096} {
		r := query(t, e.vpc, "udp", name, dns.TypeA, bufsize)
		limit := 512
		if bufsize > 0 {
			limit = int(bufsize)
		}
		if !r.Truncated || wireLen(r) > limit {
			t.Errorf("UDP with buffer %d: TC=%v, %d bytes; want TC set within %d bytes", bufsize, r.Truncated, wireLen(r), limit)
		}
	}
}

// TestVPCPathDedupAcrossSlices: an address listed in two slices (as during a
// slice migration) is answered once.
func TestVPCPathDedupAcrossSlices(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-dedup")
	var eps []cluster.Endpoint
	for i := range 101 { // two slices: 100 + 1
		eps = append(eps, cluster.Endpoint{IP: fmt.Sprintf("10.12.0.%d", i%100+1)})
	}
	e.service(t, clusterIPService(ns, "dup"), eps, nil)
	name := "dup." + ns + ".svc.cluster.local."
	eventually(t, "100 distinct addresses, once each", func() error {
		if n := len(query(t, e.vpc, "tcp", name, dns.TypeA, 0).Answer); n != 100 {
			return fmt.Errorf("%d answers", n)
		}
		return nil
	})
}

// TestVPCPathDualStack: A answers the IPv4 pods, AAAA the IPv6 pods.
func TestVPCPathDualStack(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-dual")
	svc := clusterIPService(ns, "dual")
	policy := corev1.IPFamilyPolicyRequireDualStack
	svc.Spec.IPFamilyPolicy = &policy
	e.service(t, svc, []cluster.Endpoint{{IP: "10.13.0.1"}, {IP: "fd00:13::1"}}, nil)
	name := "dual." + ns + ".svc.cluster.local."
	eventually(t, "A", func() error {
		if got := addresses(ask(t, e.vpc, name, dns.TypeA).Answer); fmt.Sprint(got) != "[10.13.0.1]" {
			return fmt.Errorf("got %v", got)
		}
		return nil
	})
	// The IPv6 slice is a separate write: wait for it too.
	eventually(t, "AAAA", func() error {
		if got := addresses(ask(t, e.vpc, name, dns.TypeAAAA).Answer); fmt.Sprint(got) != "[fd00:13::1]" {
			return fmt.Errorf("got %v", got)
		}
		return nil
	})
}

// TestVPCPathSRVUsesTargetPort: SRV carries the pods' port (what a client
// outside must dial), one record per pod, targets that resolve again.
func TestVPCPathSRVUsesTargetPort(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-srv")
	svc := clusterIPService(ns, "web", corev1.ServicePort{
		Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http-web"),
	})
	e.service(t, svc, []cluster.Endpoint{{IP: "10.14.0.1"}, {IP: "10.14.0.2"}}, map[string]int32{"http-web": 8081})
	name := "_http._tcp.web." + ns + ".svc.cluster.local."
	var r *dns.Msg
	eventually(t, "SRV per pod", func() error {
		r = ask(t, e.vpc, name, dns.TypeSRV)
		if len(r.Answer) != 2 {
			return fmt.Errorf("%d SRV records", len(r.Answer))
		}
		return nil
	})
	for _, rr := range r.Answer {
		srv := rr.(*dns.SRV)
		if srv.Port != 8081 {
			t.Errorf("SRV port %d, want the target port 8081: %v", srv.Port, srv)
		}
		again := ask(t, e.vpc, srv.Target, dns.TypeA)
		if len(addresses(again.Answer)) != 1 {
			t.Errorf("SRV target %s does not resolve: %v", srv.Target, again)
		}
	}
	if len(addresses(r.Extra)) != 2 {
		t.Errorf("want the pods' A records in the additional section:\n%v", r)
	}
	in := ask(t, e.inCluster, name, dns.TypeSRV)
	if len(in.Answer) != 1 || in.Answer[0].(*dns.SRV).Port != 80 {
		t.Errorf("in-cluster SRV must stay stock (one record, port 80):\n%v", in)
	}
}

// TestVPCPathLeavesOthersAlone: headless, ExternalName and NXDOMAIN answers
// are the same on both listeners.
func TestVPCPathLeavesOthersAlone(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-others")
	headless := clusterIPService(ns, "db")
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	e.service(t, headless, []cluster.Endpoint{{IP: "10.15.0.1", Hostname: "db-0"}}, nil)
	ext := &corev1.Service{}
	ext.Name, ext.Namespace = "docs", ns
	ext.Spec.Type, ext.Spec.ExternalName = corev1.ServiceTypeExternalName, "docs.example.org"
	e.service(t, ext, nil, nil)

	eventually(t, "headless resolves", func() error {
		if len(ask(t, e.vpc, "db."+ns+".svc.cluster.local.", dns.TypeA).Answer) != 1 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"db." + ns + ".svc.cluster.local.", dns.TypeA},
		{"db-0.db." + ns + ".svc.cluster.local.", dns.TypeA},
		{"_http._tcp.db." + ns + ".svc.cluster.local.", dns.TypeSRV},
		{"docs." + ns + ".svc.cluster.local.", dns.TypeCNAME},
		{"missing." + ns + ".svc.cluster.local.", dns.TypeA},
	} {
		vpc, in := ask(t, e.vpc, q.name, q.qtype), ask(t, e.inCluster, q.name, q.qtype)
		vpc.Id, in.Id = 0, 0
		if vpc.String() != in.String() {
			t.Errorf("%s %s differs between listeners\nVPC:\n%v\nin-cluster:\n%v", q.name, dns.TypeToString[q.qtype], vpc, in)
		}
	}
}

// TestVPCPathFollowsEndpointChanges: a pod that stops being ready drops out of
// the next answer once the informer has seen the change.
func TestVPCPathFollowsEndpointChanges(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-churn")
	svc := e.service(t, clusterIPService(ns, "api"), []cluster.Endpoint{{IP: "10.16.0.1"}, {IP: "10.16.0.2"}}, nil)
	name := "api." + ns + ".svc.cluster.local."
	eventually(t, "both pods", func() error {
		if n := len(ask(t, e.vpc, name, dns.TypeA).Answer); n != 2 {
			return fmt.Errorf("%d answers", n)
		}
		return nil
	})
	if err := e.cluster.SetEndpoints(context.Background(), svc, []cluster.Endpoint{{IP: "10.16.0.1"}, {IP: "10.16.0.2", NotReady: true}}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the not-ready pod is gone", func() error {
		if got := addresses(ask(t, e.vpc, name, dns.TypeA).Answer); fmt.Sprint(got) != "[10.16.0.1]" {
			return fmt.Errorf("got %v", got)
		}
		return nil
	})
}

// TestVPCPathNamespaceRestriction: with `namespaces`, only Services in those
// namespaces answer with pods; others keep their ClusterIP on the VPC path.
func TestVPCPathNamespaceRestriction(t *testing.T) {
	e := setUp(t)
	in, out := e.namespace(t, "ho-ns-in"), e.namespace(t, "ho-ns-out")
	e.service(t, clusterIPService(in, "api"), []cluster.Endpoint{{IP: "10.17.0.1"}}, nil)
	outSvc := e.service(t, clusterIPService(out, "api"), []cluster.Endpoint{{IP: "10.17.1.1"}}, nil)
	restricted := e.variant(t, "ports 5353", "ports 5353\n        namespaces "+in)

	eventually(t, "the selected namespace answers with pods", func() error {
		if got := addresses(ask(t, restricted.vpc, "api."+in+".svc.cluster.local.", dns.TypeA).Answer); fmt.Sprint(got) != "[10.17.0.1]" {
			return fmt.Errorf("got %v", got)
		}
		return nil
	})
	wantAddrs(t, "a namespace not selected", ask(t, restricted.vpc, "api."+out+".svc.cluster.local.", dns.TypeA), outSvc.Spec.ClusterIP)
}

// TestVPCListenerIsNotAnOpenResolver: the VPC-facing listener serves the
// cluster zone only; any other name, reverse names included, is REFUSED
// there, while the in-cluster listener still answers reverse lookups.
func TestVPCListenerIsNotAnOpenResolver(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-refused")
	api := e.service(t, clusterIPService(ns, "api"), []cluster.Endpoint{{IP: "10.18.0.1"}}, nil)
	reverse, _ := dns.ReverseAddr(api.Spec.ClusterIP)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"example.org.", dns.TypeA},
		{"cluster.local.example.org.", dns.TypeA},
		{reverse, dns.TypePTR},
		{".", dns.TypeNS},
	} {
		if r := ask(t, e.vpc, q.name, q.qtype); rcode(r) != "REFUSED" {
			t.Errorf("%s %s on the VPC listener: %s, want REFUSED", q.name, dns.TypeToString[q.qtype], rcode(r))
		}
	}
	eventually(t, "in-cluster PTR", func() error {
		if r := ask(t, e.inCluster, reverse, dns.TypePTR); len(r.Answer) != 1 {
			return fmt.Errorf("%s %v", rcode(r), r.Answer)
		}
		return nil
	})
}

// TestVPCPathHandMadeSlices: a Service without a selector, whose one
// EndpointSlice was written by hand (no managed-by label, ready unset), is
// answered with that slice's addresses.
func TestVPCPathHandMadeSlices(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-manual")
	svc := clusterIPService(ns, "external-db")
	svc.Spec.Selector = nil
	e.service(t, svc, nil, nil)
	port, proto, name := int32(5432), corev1.ProtocolTCP, "http"
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "external-db-manual", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "external-db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.19.0.1"}}, {Addresses: []string{"10.19.0.2"}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
	}
	if _, err := e.cluster.Client.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hand-made slice", func() error {
		if got := addresses(ask(t, e.vpc, "external-db."+ns+".svc.cluster.local.", dns.TypeA).Answer); fmt.Sprint(got) != "[10.19.0.1 10.19.0.2]" {
			return fmt.Errorf("got %v", got)
		}
		return nil
	})
}

// TestNoZoneTransfers: AXFR of the cluster zone is not served on either
// listener (Corefile.example has no transfer plugin): nobody on the VPN can
// list every Service.
func TestNoZoneTransfers(t *testing.T) {
	e := setUp(t)
	for _, addr := range []string{e.vpc, e.inCluster} {
		r := query(t, addr, "tcp", "cluster.local.", dns.TypeAXFR, 0)
		t.Logf("AXFR cluster.local on %s: %s, %d records", addr, rcode(r), len(r.Answer))
		if r.Rcode == dns.RcodeSuccess || len(r.Answer) > 0 {
			t.Errorf("AXFR cluster.local on %s was served:\n%v", addr, r)
		}
	}
}

// TestACLRefusesOtherSources: Corefile.example's acl answers only private
// sources; a client outside the allowed ranges (here: loopback, once taken
// out of the list) is REFUSED for cluster names on both listeners.
func TestACLRefusesOtherSources(t *testing.T) {
	e := setUp(t)
	narrowed := e.variant(t, " 127.0.0.0/8 ::1/128\n", "\n")
	for _, addr := range []string{narrowed.vpc, narrowed.inCluster} {
		if r := ask(t, addr, "kubernetes.default.svc.cluster.local.", dns.TypeA); rcode(r) != "REFUSED" {
			t.Errorf("a source outside the acl asked %s: %s, want REFUSED", addr, rcode(r))
		}
	}
	if r := ask(t, e.vpc, "kubernetes.default.svc.cluster.local.", dns.TypeA); rcode(r) == "REFUSED" {
		t.Errorf("an allowed source was refused on the VPC listener:\n%v", r)
	}
}
