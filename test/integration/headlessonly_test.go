package integration

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

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
	svc := e.service(t, cluster.ClusterIPService(ns, "api"), []cluster.Endpoint{
		{IP: "10.10.0.1"}, {IP: "10.10.0.2"},
		{IP: "10.10.0.3", NotReady: true},
		{IP: "10.10.0.4", Terminating: true},
	}, nil)
	pub := cluster.ClusterIPService(ns, "pub")
	pub.Spec.PublishNotReadyAddresses = true
	e.service(t, pub, []cluster.Endpoint{{IP: "10.10.1.1"}, {IP: "10.10.1.2", NotReady: true}}, nil)

	name := "api." + ns + ".svc.cluster.local."
	waitAddrs(t, e.vpc, "udp", name, dns.TypeA, "10.10.0.1", "10.10.0.2")
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
	e.service(t, cluster.ClusterIPService(ns, "big"), eps, nil)
	name := "big." + ns + ".svc.cluster.local."
	waitAnswers(t, e.vpc, "tcp", name, dns.TypeA, 300)
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
	e.service(t, cluster.ClusterIPService(ns, "dup"), eps, nil)
	name := "dup." + ns + ".svc.cluster.local."
	waitAnswers(t, e.vpc, "tcp", name, dns.TypeA, 100)
}

// TestVPCPathDualStack: A answers the IPv4 pods, AAAA the IPv6 pods, by the
// Service's name and through the alias.
func TestVPCPathDualStack(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-dual")
	svc := cluster.ClusterIPService(ns, "dual")
	policy := corev1.IPFamilyPolicyRequireDualStack
	svc.Spec.IPFamilyPolicy = &policy
	e.service(t, svc, []cluster.Endpoint{{IP: "10.13.0.1"}, {IP: "fd00:13::1"}}, nil)
	for _, name := range []string{"dual." + ns + ".svc.cluster.local.", "stg-dual." + ns + ".svc.cluster.local."} {
		waitAddrs(t, e.vpc, "udp", name, dns.TypeA, "10.13.0.1")
		// The IPv6 slice is a separate write: wait for it too.
		waitAddrs(t, e.vpc, "udp", name, dns.TypeAAAA, "fd00:13::1")
	}
}

// TestVPCPathSRVUsesTargetPort: SRV carries the pods' port (what a client
// outside must dial), one record per pod, targets that resolve again.
func TestVPCPathSRVUsesTargetPort(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-srv")
	svc := cluster.ClusterIPService(ns, "web", corev1.ServicePort{
		Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http-web"),
	})
	e.service(t, svc, []cluster.Endpoint{{IP: "10.14.0.1"}, {IP: "10.14.0.2"}}, map[string]int32{"http-web": 8081})
	name := "_http._tcp.web." + ns + ".svc.cluster.local."
	r := waitAnswers(t, e.vpc, "udp", name, dns.TypeSRV, 2)
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
	headless := cluster.ClusterIPService(ns, "db")
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	e.service(t, headless, []cluster.Endpoint{{IP: "10.15.0.1", Hostname: "db-0"}}, nil)
	ext := &corev1.Service{}
	ext.Name, ext.Namespace = "docs", ns
	ext.Spec.Type, ext.Spec.ExternalName = corev1.ServiceTypeExternalName, "docs.example.org"
	e.service(t, ext, nil, nil)

	waitAnswers(t, e.vpc, "udp", "db."+ns+".svc.cluster.local.", dns.TypeA, 1)
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
	svc := e.service(t, cluster.ClusterIPService(ns, "api"), []cluster.Endpoint{{IP: "10.16.0.1"}, {IP: "10.16.0.2"}}, nil)
	name := "api." + ns + ".svc.cluster.local."
	waitAnswers(t, e.vpc, "udp", name, dns.TypeA, 2)
	if err := e.SetEndpoints(context.Background(), svc, []cluster.Endpoint{{IP: "10.16.0.1"}, {IP: "10.16.0.2", NotReady: true}}, nil); err != nil {
		t.Fatal(err)
	}
	waitAddrs(t, e.vpc, "udp", name, dns.TypeA, "10.16.0.1")
}

// TestVPCPathNamespaceRestriction: with `namespaces`, only Services in those
// namespaces answer with pods; others keep their ClusterIP on the VPC path.
func TestVPCPathNamespaceRestriction(t *testing.T) {
	e := setUp(t)
	in, out := e.namespace(t, "ho-ns-in"), e.namespace(t, "ho-ns-out")
	e.service(t, cluster.ClusterIPService(in, "api"), []cluster.Endpoint{{IP: "10.17.0.1"}}, nil)
	outSvc := e.service(t, cluster.ClusterIPService(out, "api"), []cluster.Endpoint{{IP: "10.17.1.1"}}, nil)
	restricted := e.variant(t, "ports 5353", "ports 5353\n        namespaces "+in)

	waitAddrs(t, restricted.vpc, "udp", "api."+in+".svc.cluster.local.", dns.TypeA, "10.17.0.1")
	wantAddrs(t, "a namespace not selected", ask(t, restricted.vpc, "api."+out+".svc.cluster.local.", dns.TypeA), outSvc.Spec.ClusterIP)
}

// TestVPCListenerIsNotAnOpenResolver: the VPC-facing listener serves the
// cluster zone only; any other name, reverse names included, is REFUSED
// there, while the in-cluster listener still answers reverse lookups.
func TestVPCListenerIsNotAnOpenResolver(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-refused")
	api := e.service(t, cluster.ClusterIPService(ns, "api"), []cluster.Endpoint{{IP: "10.18.0.1"}}, nil)
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
	waitAnswers(t, e.inCluster, "udp", reverse, dns.TypePTR, 1)
}

// TestVPCPathHandMadeSlices: a Service without a selector, whose one
// EndpointSlice was written by hand (no managed-by label, ready unset), is
// answered with that slice's addresses.
func TestVPCPathHandMadeSlices(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ho-manual")
	svc := cluster.ClusterIPService(ns, "external-db")
	svc.Spec.Selector = nil
	e.service(t, svc, nil, nil)
	port, proto, name := int32(5432), corev1.ProtocolTCP, "http"
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "external-db-manual", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "external-db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.19.0.1"}}, {Addresses: []string{"10.19.0.2"}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
	}
	if _, err := e.Client.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAddrs(t, e.vpc, "udp", "external-db."+ns+".svc.cluster.local.", dns.TypeA, "10.19.0.1", "10.19.0.2")
}

// TestNoZoneTransfers: AXFR of the cluster zone is not served on either
// listener (Corefile.Example has no transfer plugin): nobody on the VPN can
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

// TestACLRefusesOtherSources: Corefile.Example's acl answers only private
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

// TestVPCPathOverIPv6 is the IPv6 VPC answer end to end: our coredns runs
// Corefile.Example as the chart and manifests/ deploy it (`envalias
// {$WARPDNS_ENV}`, the environment from the process environment, as the
// Deployment sets it), both listeners bound to [::1] only, and a client asks
// over IPv6 (UDP and TCP) for the stg- name of an IPv6-only and of a
// dual-stack Service: AAAA answers their IPv6 pod IPs, the asked name kept.
// That is what a VPC client gets through an IPv6 or dual-stack kube-dns-nlb.
func TestVPCPathOverIPv6(t *testing.T) {
	e := setUp(t)
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	} else {
		ln.Close()
	}

	const line = "\n    envalias stg\n"
	if !strings.Contains(e.Example, line) {
		t.Fatalf("Corefile.Example has no %q", strings.TrimSpace(line))
	}
	deployed := strings.Replace(e.Example, line, "\n    envalias {$WARPDNS_ENV}\n", 1)
	t.Setenv("WARPDNS_ENV", "stg") // inherited by coredns, as from the Deployment's env

	ports, err := cluster.FreeCoreDNSPorts()
	if err != nil {
		t.Fatal(err)
	}
	local := ports.Local(e.Kubeconfig, cluster.NoUpstream)
	local.Bind = []string{"::1"}
	corefile, err := cluster.RenderLocal(deployed, local)
	if err != nil {
		t.Fatal(err)
	}
	vpc := fmt.Sprintf("[::1]:%d", ports.VPC)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	coredns, err := cluster.StartCoreDNS(ctx, e.OurBin, corefile, e.TempDir, cluster.AllReady(
		cluster.HTTPReady(fmt.Sprintf("http://127.0.0.1:%d/ready", ports.Ready)), cluster.DNSAnswers(vpc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coredns.Stop() })
	// Bound to [::1] only: nothing answers on the IPv4 loopback.
	if _, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", ports.VPC), time.Second); err == nil {
		t.Errorf("the VPC listener answers on 127.0.0.1 too; the Corefile binds ::1 only")
	}

	ns := e.namespace(t, "v6-vpc")
	single := corev1.IPFamilyPolicySingleStack
	v6only := cluster.ClusterIPService(ns, "api6")
	v6only.Spec.IPFamilyPolicy = &single
	v6only.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	v6only = e.service(t, v6only, []cluster.Endpoint{{IP: "fd00:60::10"}, {IP: "fd00:60::11"}, {IP: "fd00:60::12", NotReady: true}}, nil)

	dual := corev1.IPFamilyPolicyRequireDualStack
	both := cluster.ClusterIPService(ns, "api46")
	both.Spec.IPFamilyPolicy = &dual
	both.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
	e.service(t, both, []cluster.Endpoint{{IP: "10.60.0.20"}, {IP: "fd00:60::20"}}, nil)

	for _, tc := range []struct {
		svc   string
		qtype uint16
		want  []string
	}{
		{"api6", dns.TypeAAAA, []string{"fd00:60::10", "fd00:60::11"}}, // ready pods only
		{"api46", dns.TypeAAAA, []string{"fd00:60::20"}},
		{"api46", dns.TypeA, []string{"10.60.0.20"}},
	} {
		asked := "stg-" + tc.svc + "." + ns + ".svc.cluster.local."
		for _, network := range []string{"udp6", "tcp6"} {
			t.Run(tc.svc+"/"+dns.TypeToString[tc.qtype]+"/"+network, func(t *testing.T) {
				r := waitAddrs(t, vpc, network, asked, tc.qtype, tc.want...)
				for _, owner := range owners(r.Answer) {
					if owner != asked {
						t.Errorf("answer owner %s, want the asked name %s", owner, asked)
					}
				}
			})
		}
	}

	// Not a ClusterIP: the IPv6-only Service's own address is never the
	// answer on the VPC path.
	r := query(t, vpc, "udp6", "stg-api6."+ns+".svc.cluster.local.", dns.TypeAAAA, 4096)
	for _, a := range addresses(r.Answer) {
		if a == v6only.Spec.ClusterIP {
			t.Errorf("the VPC path answered the ClusterIP %s", a)
		}
	}
}
