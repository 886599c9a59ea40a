package manifests

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// The field model: each overlay's cluster as the test models it, and what
// happens to a query between the client and a CoreDNS pod there. The
// NetworkPolicies are evaluated by cyclonus's policy engine (the matcher
// that kubernetes-sigs/network-policy-api's policy-assistant grew from;
// policy-assistant itself is a nested module the Go module proxy does not
// serve), not by reading the YAML: the engine decides, for one packet, which
// policies select the destination pod and whether any of their rules admits
// the source. Before that, arrivals works out which sources the packet can
// carry when it reaches the pod: the load balancer's delivery and the nodes'
// SNAT decide that, not the client.

// dataplane is how a CNI matches an ipBlock peer.
type dataplane string

const (
	// byAddress: Calico, the Amazon VPC CNI, Azure NPM: an ipBlock matches
	// any source address, a pod's included. This is what the engine does.
	byAddress dataplane = "ipBlock matches any address"
	// byIdentity: Cilium and GKE Dataplane V2 (implemented with Cilium,
	// https://cloud.google.com/kubernetes-engine/docs/concepts/dataplane-v2):
	// "CIDR rules do not apply to traffic where both sides of the connection
	// are either managed by Cilium or use an IP belonging to a node in the
	// cluster" (cilium/cilium Documentation/security/policy/language.rst,
	// "CIDR based"). Modeled by removing the ipBlock rules before judging a
	// packet from a pod or a node.
	byIdentity dataplane = "ipBlock matches no pod and no node (Cilium, GKE Dataplane V2)"
	// nodesByCIDR: Cilium with policy-cidr-match-mode: nodes ("As of v1.15,
	// ipBlock can now optionally select node IPs",
	// Documentation/network/kubernetes/policy.rst): ipBlocks match node
	// addresses too, still no pod.
	nodesByCIDR dataplane = "ipBlock matches no pod (Cilium, policy-cidr-match-mode: nodes)"
)

// delivery is how a platform's load balancer hands a query for its address
// to the cluster, and what picks the pod.
type delivery string

const (
	// nlbToPods: the AWS Load Balancer Controller's NLB with target type ip
	// sends to the pod's own address. UDP and TCP_UDP target groups keep an
	// IPv4 client's address ("enabled (and can't be disabled)"); an IPv6
	// client's query reaches IPv4 targets from "Load balancer IPv4 address"
	// (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/edit-target-group-attributes.html#client-ip-preservation).
	// No node is on the path, and no node knows the NLB's addresses (the
	// controller publishes a hostname only: aws-load-balancer-controller
	// controllers/service/service_controller.go, updateServiceStatus), so a
	// pod's query, cloudflared's too, goes out to the NLB and comes back with
	// its own address. Hence the hairpin: "NAT loopback, also known as
	// hairpinning, is not supported when client IP preservation is enabled"
	// (load-balancer-troubleshooting.html); see hairpin.
	nlbToPods delivery = "NLB with IP targets"
	// nodesKubeProxy: the load balancer hands the packet, still for its own
	// address and from its client, to a node (GKE's passthrough load
	// balancer, Azure's with floating IP, MetalLB), and kube-proxy there
	// picks an endpoint; a pod's packet for that address is caught by
	// kube-proxy on the pod's own node. With externalTrafficPolicy Cluster
	// kube-proxy masquerades every packet for an external destination, a
	// pod's included ("masquerade traffic for ... external destinations",
	// kubernetes v1.37.2 pkg/proxy/iptables/proxier.go and
	// pkg/proxy/nftables/proxier.go, "masquerade"), which a pod on another
	// node sees as the forwarding node's address. (On the receiving node an
	// iptables policy engine judges it in FORWARD, before POSTROUTING
	// masquerades it: the client's own address.) With Local, traffic from
	// outside reaches only nodes with a local endpoint (the load balancer's
	// health check on kube-proxy's healthCheckNodePort, 200 only with
	// localEndpoints > 0, pkg/proxy/healthcheck/service_health.go), is not
	// masqueraded, and "pod traffic for ... external destinations" goes to
	// any endpoint unmasqueraded.
	nodesKubeProxy delivery = "to a node, kube-proxy"
	// nodesCilium: the same with Cilium's eBPF load balancer (GKE Dataplane
	// V2, Cilium with kube-proxy replacement). For a pod, "sockets are
	// assigned to service backends directly" (no SNAT); node-external traffic
	// for a backend on another node is SNATed ("By default, Cilium's eBPF
	// NodePort implementation operates in SNAT mode", cilium
	// Documentation/network/kubernetes/kubeproxy-free.rst); with Local it is
	// not forwarded between nodes.
	nodesCilium delivery = "to a node, Cilium's eBPF load balancer"
)

// field describes one overlay's cluster: its dataplane, its load balancer's
// delivery, the Service families its apiserver has, and the addresses that
// send to the VPC-facing listener.
type field struct {
	dataplane dataplane
	delivery  delivery
	// families are the apiserver's Service families (its
	// --service-cluster-ip-range), as the platform makes clusters.
	families    []corev1.IPFamily
	cloudflared string // a cloudflared pod's IP
	unrelated   string // the IP of some other pod, in another namespace
	node        string // a node's IP: the source its SNAT gives a packet
	// outside is a client outside the cluster that queries the load
	// balancer directly, "" where the overlay admits none (EKS keeps every
	// IPv4 client's address, and the VPC range holds every pod's).
	outside string
	lb      string // the load balancer's own private IPv4 address
}

// ipv4 and ipv6 are the families of a single-stack cluster. "Amazon EKS
// doesn't support dual-stacked Pods or services": an EKS cluster is IPv4 or
// IPv6, chosen when it is created
// (https://docs.aws.amazon.com/eks/latest/userguide/cni-ipv6.html).
var (
	ipv4 = []corev1.IPFamily{corev1.IPv4Protocol}
	ipv6 = []corev1.IPFamily{corev1.IPv6Protocol}
)

// fields: every overlay under manifests/overlays must have an entry. The
// addresses come from each overlay's values: pods in its Pod range (on EKS
// and AKS with flat Azure CNI, in the node subnets), nodes in the node
// subnet (the home lab's on the LAN), clients outside per docs/deploy.md.
var fields = map[string]field{
	// EKS: the VPC CNI gives pods addresses of the node subnets.
	"eks-stg": {dataplane: byAddress, delivery: nlbToPods, families: ipv4,
		cloudflared: "10.0.13.7", unrelated: "10.0.45.9", node: "10.0.13.200", lb: "10.0.12.53"},
	"eks-prd": {dataplane: byAddress, delivery: nlbToPods, families: ipv4,
		cloudflared: "10.1.13.7", unrelated: "10.1.45.9", node: "10.1.13.200", lb: "10.1.44.53"},
	// The stg cluster (IPv4) behind a dualstack NLB: a VPC client on IPv6.
	"eks-dual-stack": {dataplane: byAddress, delivery: nlbToPods, families: ipv4,
		cloudflared: "10.0.13.7", unrelated: "10.0.45.9", node: "10.0.13.200", outside: "2600:1f14:abc:1200::99", lb: "10.0.12.53"},
	// GKE: Dataplane V2; pods in the Pod range 10.20.0.0/14, nodes and a VM
	// of the VPC in the node subnet.
	"gke": {dataplane: byIdentity, delivery: nodesCilium, families: ipv4,
		cloudflared: "10.20.1.5", unrelated: "10.20.2.9", node: "10.10.0.3", outside: "10.10.0.7"},
	"gke-two-services": {dataplane: byIdentity, delivery: nodesCilium, families: ipv4,
		cloudflared: "10.20.1.5", unrelated: "10.20.2.9", node: "10.10.0.3", outside: "10.10.0.7"},
	// AKS, Azure CNI (flat) with Azure NPM: pods and nodes in the node
	// subnet 10.224.0.0/16; a VM elsewhere in the VNet.
	"aks": {dataplane: byAddress, delivery: nodesKubeProxy, families: ipv4,
		cloudflared: "10.224.0.40", unrelated: "10.224.0.41", node: "10.224.0.4", outside: "10.225.3.4"},
	// Home lab: Pod CIDR 10.244.0.0/16, nodes and a laptop on the LAN.
	// Cilium as overlays/cilium asks for it (policy-cidr-match-mode:
	// nodes); MetalLB with kube-proxy and Calico.
	"cilium": {dataplane: nodesByCIDR, delivery: nodesCilium, families: ipv4,
		cloudflared: "10.244.1.5", unrelated: "10.244.2.9", node: "192.168.1.11", outside: "192.168.1.20"},
	"metallb": {dataplane: byAddress, delivery: nodesKubeProxy, families: ipv4,
		cloudflared: "10.244.1.5", unrelated: "10.244.2.9", node: "192.168.1.11", outside: "192.168.1.20"},
}

// sourceKind tells a dataplane that matches by identity what a source is.
type sourceKind int

const (
	fromPod sourceKind = iota
	fromNode
	fromOutside
)

// source is a packet's sender as the CoreDNS pod sees it.
type source struct {
	*matcher.TrafficPeer
	kind sourceKind
	what string
}

// inTheField judges objs's NetworkPolicies in the overlay's cluster (its
// fields entry): cloudflared (its pod as the cloudflared build labels it) and
// the clients outside reach the VPC-facing listener over UDP and TCP by
// every path the load balancer and the nodes may give their queries, a pod
// of another namespace does not, in-cluster DNS keeps working. On EKS also
// the NLB's hairpin and the readiness-gate label.
func inTheField(t *testing.T, overlay string, objs []*unstructured.Unstructured, cloudflared *matcher.TrafficPeer) {
	t.Helper()
	f, ok := fields[overlay]
	if !ok {
		t.Fatalf("no field model for overlay %s: add it to fields", overlay)
	}
	dns := dnsPeer(t, objs)
	policies := ofKind[networkingv1.NetworkPolicy](t, objs, "NetworkPolicy")
	if len(policies) == 0 {
		t.Fatal("no NetworkPolicy selects the CoreDNS pods: any pod may query 5353")
	}
	svc := find(objs, "Service", "kube-dns-nlb")
	if svc == nil {
		t.Fatal("no Service kube-dns-nlb")
	}
	lb := convert[corev1.Service](t, svc)
	cf := source{withIP(cloudflared, f.cloudflared), fromPod, "cloudflared's query"}
	other := source{&matcher.TrafficPeer{IP: f.unrelated, Internal: &matcher.InternalPeer{
		Namespace:       "shop",
		NamespaceLabels: map[string]string{corev1.LabelMetadataName: "shop"},
		PodLabels:       map[string]string{"app.kubernetes.io/name": "web"},
	}}, fromPod, "a pod of another namespace"}
	for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
		for _, a := range arrivals(f, lb, cf) {
			expect(t, f.dataplane, policies, a, dns, 5353, proto, true)
		}
		if f.outside != "" {
			client := source{&matcher.TrafficPeer{IP: f.outside}, fromOutside, "the query of a client outside the cluster (" + f.outside + ")"}
			for _, a := range arrivals(f, lb, client) {
				expect(t, f.dataplane, policies, a, dns, 5353, proto, true)
			}
		}
		expect(t, f.dataplane, policies, other, dns, 5353, proto, false)
		for _, a := range arrivals(f, lb, other) {
			expect(t, f.dataplane, policies, a, dns, 5353, proto, false)
		}
		expect(t, f.dataplane, policies, source{other.TrafficPeer, fromPod, "in-cluster DNS from any pod"}, dns, 53, proto, true)
	}
	if f.delivery == nlbToPods {
		hairpin(t, objs, dns, cloudflared)
		readinessGates(t, objs, dns)
	}
}

// arrivals lists the sources src's query for the load balancer's address
// can carry when it reaches a CoreDNS pod, one for each path it may take
// (see delivery): the sources the NetworkPolicy must admit, or refuse.
func arrivals(f field, svc *corev1.Service, src source) []source {
	local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	forwarded := source{&matcher.TrafficPeer{IP: f.node}, fromNode,
		fmt.Sprintf("%s, forwarded by the node %s to a pod on another node (externalTrafficPolicy %s)", src.what, f.node,
			cmp.Or(svc.Spec.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicyCluster))}
	switch f.delivery {
	case nlbToPods:
		if ip, err := netip.ParseAddr(src.IP); err == nil && ip.Is6() && !slices.Contains(svc.Spec.IPFamilies, corev1.IPv6Protocol) {
			return []source{{&matcher.TrafficPeer{IP: f.lb}, fromOutside, src.what + ", from the NLB's IPv4 address (IPv4 targets)"}}
		}
		return []source{src}
	case nodesKubeProxy:
		if local {
			return []source{src}
		}
		return []source{src, forwarded}
	case nodesCilium:
		if local || src.kind == fromPod {
			return []source{src}
		}
		return []source{src, forwarded}
	}
	panic("unknown delivery " + f.delivery)
}

// hairpin: the NLB keeps cloudflared's address, so a reply from a CoreDNS
// pod on cloudflared's own node goes pod to pod inside the node and never
// returns through the NLB, whose address cloudflared expects it from (see
// nlbToPods; aws/amazon-vpc-cni-k8s#2505 reports the intermittent timeouts).
// A required anti-affinity on either side must keep the two apart (the
// scheduler enforces existing pods' required anti-affinity too: "node(s)
// didn't satisfy existing pods anti-affinity rules", kubernetes
// pkg/scheduler/framework/plugins/interpodaffinity/filtering.go).
func hairpin(t *testing.T, objs []*unstructured.Unstructured, dns, cloudflared *matcher.TrafficPeer) {
	t.Helper()
	dnsPod := scheduledPod{dns.Internal, podAffinity(t, objs, "warpdns", "coredns")}
	cfPod := scheduledPod{cloudflared.Internal, podAffinity(t, objs, "cloudflared")}
	if !repels(dnsPod, cfPod) && !repels(cfPod, dnsPod) {
		t.Error("a CoreDNS pod may run on a cloudflared pod's node: the NLB keeps cloudflared's address (UDP and TCP_UDP " +
			"target groups always preserve it), so when it picks that pod the reply stays inside the node and never " +
			"returns through the NLB, and cloudflared drops it (NAT loopback is not supported with client IP preservation). " +
			"Keep them apart with a required pod anti-affinity on kubernetes.io/hostname")
	}
}

// scheduledPod is a pod template as the scheduler's inter-pod affinity sees
// it: its namespace and labels, and its affinity.
type scheduledPod struct {
	*matcher.InternalPeer
	affinity *corev1.Affinity
}

// cloudflaredPod is a cloudflared pod as manifests/cloudflared labels it,
// with no affinity of its own: what CoreDNS's anti-affinity must keep away.
func cloudflaredPod() scheduledPod {
	return scheduledPod{&matcher.InternalPeer{Namespace: "cloudflared", PodLabels: map[string]string{"app.kubernetes.io/name": "cloudflared"}}, nil}
}

// podAffinity is the pod template affinity of the first of the named
// Deployments in objs (nil when none is there, as for cloudflared in a
// build of the DNS side alone).
func podAffinity(t *testing.T, objs []*unstructured.Unstructured, names ...string) *corev1.Affinity {
	for _, name := range names {
		if d := find(objs, "Deployment", name); d != nil {
			return convert[appsv1.Deployment](t, d).Spec.Template.Spec.Affinity
		}
	}
	return nil
}

// repels: owner's required anti-affinity keeps other off owner's node
// (namespace semantics of k8s.io/api core/v1 PodAffinityTerm: "null or empty
// namespaces list and null namespaceSelector means this pod's namespace",
// "An empty selector ({}) matches all namespaces").
func repels(owner, other scheduledPod) bool {
	if owner.affinity == nil || owner.affinity.PodAntiAffinity == nil {
		return false
	}
	for _, term := range owner.affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		pods, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
		if term.TopologyKey != corev1.LabelHostname || err != nil || !pods.Matches(labels.Set(other.PodLabels)) {
			continue
		}
		if len(term.Namespaces) == 0 && term.NamespaceSelector == nil && other.Namespace == owner.Namespace ||
			slices.Contains(term.Namespaces, other.Namespace) {
			return true
		}
		if term.NamespaceSelector != nil {
			if ns, err := metav1.LabelSelectorAsSelector(term.NamespaceSelector); err == nil && ns.Matches(labels.Set(other.NamespaceLabels)) {
				return true
			}
		}
	}
	return false
}

// readinessGateWebhook selects the namespaces whose pods the AWS Load
// Balancer Controller's mutating webhook gives a readiness gate: its
// namespaceSelector, key elbv2.k8s.aws/pod-readiness-gate-inject In
// [enabled] (aws-load-balancer-controller
// helm/aws-load-balancer-controller/templates/webhook.yaml, mpod.elbv2.k8s.aws).
var readinessGateWebhook = labels.SelectorFromSet(labels.Set{"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"})

// readinessGates: the standalone pods wait for the NLB's health checks
// before they count as ready (a rollout then never leaves the NLB without a
// healthy target); the cluster's own CoreDNS must not. "A pod is ready when
// all its containers are ready AND all conditions specified in the readiness
// gates have status equal to True" (k8s.io/api core/v1
// PodSpec.ReadinessGates): gated, kube-dns has no ready endpoint until the
// controller has seen the NLB's health checks pass, and the controller asks
// the ELB API by name through that same cluster DNS (default dnsPolicy,
// helm/aws-load-balancer-controller values.yaml). When every CoreDNS pod is
// new at once, neither can move.
func readinessGates(t *testing.T, objs []*unstructured.Unstructured, dns *matcher.TrafficPeer) {
	t.Helper()
	gated := readinessGateWebhook.Matches(labels.Set(dns.Internal.NamespaceLabels))
	switch servesClusterDNS := find(objs, "Deployment", "warpdns") == nil; {
	case servesClusterDNS && gated:
		t.Errorf("namespace %s carries elbv2.k8s.aws/pod-readiness-gate-inject=enabled: the cluster's CoreDNS pods then "+
			"become ready only once the load balancer controller has seen the NLB's health checks, and the controller "+
			"resolves the ELB API through that same DNS; when all CoreDNS pods are new at once, cluster DNS stays down "+
			"(and with failurePolicy Fail no pod of %s can be created while the controller is away)", dns.Internal.Namespace, dns.Internal.Namespace)
	case !servesClusterDNS && !gated:
		t.Errorf("namespace %s: label elbv2.k8s.aws/pod-readiness-gate-inject=enabled (pod readiness gates, so a rollout "+
			"never leaves the NLB without a healthy target)", dns.Internal.Namespace)
	}
}

// TestIPBlockDoesNotAdmitPodsOnIdentityDataplanes: the model itself. A policy
// that admits cloudflared by an ipBlock around its pod IP works where
// ipBlocks match addresses and drops its queries on Cilium and GKE Dataplane
// V2, which is what the old networkpolicy.yaml did there.
func TestIPBlockDoesNotAdmitPodsOnIdentityDataplanes(t *testing.T) {
	np := &networkingv1.NetworkPolicy{}
	np.Namespace, np.Name = "warpdns", "by-ipblock"
	np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.244.0.0/16"}}},
	}}
	dst := &matcher.TrafficPeer{IP: "10.244.3.3", Internal: &matcher.InternalPeer{Namespace: "warpdns",
		NamespaceLabels: map[string]string{corev1.LabelMetadataName: "warpdns"}}}
	pod := source{&matcher.TrafficPeer{IP: "10.244.1.5", Internal: &matcher.InternalPeer{Namespace: "cloudflared",
		NamespaceLabels: map[string]string{corev1.LabelMetadataName: "cloudflared"}}}, fromPod, "a pod in the ipBlock"}
	node := source{&matcher.TrafficPeer{IP: "10.244.0.1"}, fromNode, "a node in the ipBlock"}
	outside := source{&matcher.TrafficPeer{IP: "10.244.9.9"}, fromOutside, "an outside address in the ipBlock"}
	policies := []*networkingv1.NetworkPolicy{np}
	expect(t, byAddress, policies, pod, dst, 5353, corev1.ProtocolUDP, true)
	expect(t, byIdentity, policies, pod, dst, 5353, corev1.ProtocolUDP, false)
	expect(t, byIdentity, policies, node, dst, 5353, corev1.ProtocolUDP, false)
	expect(t, byIdentity, policies, outside, dst, 5353, corev1.ProtocolUDP, true)
	expect(t, nodesByCIDR, policies, pod, dst, 5353, corev1.ProtocolUDP, false)
	expect(t, nodesByCIDR, policies, node, dst, 5353, corev1.ProtocolUDP, true)
}

// TestArrivals: the model of the delivery. kube-proxy's SNAT and Cilium's
// under each externalTrafficPolicy, the NLB's address for IPv6 clients, and
// that a NetworkPolicy admitting the clients by address does not admit what
// a node makes of their queries. The AKS case is issue 22's point 4.
func TestArrivals(t *testing.T) {
	svc := func(etp corev1.ServiceExternalTrafficPolicy) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{ExternalTrafficPolicy: etp, IPFamilies: ipv4}}
	}
	pod := source{&matcher.TrafficPeer{IP: "10.224.0.40", Internal: &matcher.InternalPeer{Namespace: "cloudflared"}}, fromPod, "a pod"}
	vm := source{&matcher.TrafficPeer{IP: "10.225.3.4"}, fromOutside, "a VM"}
	ips := func(l []source) (s []string) {
		for _, a := range l {
			s = append(s, a.IP)
		}
		return s
	}
	aks, gke := fields["aks"], fields["gke"]
	for _, tc := range []struct {
		name string
		f    field
		etp  corev1.ServiceExternalTrafficPolicy
		src  source
		want []string
	}{
		{"kube-proxy, Cluster: a VM's query", aks, "", vm, []string{vm.IP, aks.node}},
		{"kube-proxy, Cluster: a pod's query, masqueraded too", aks, corev1.ServiceExternalTrafficPolicyCluster, pod, []string{pod.IP, aks.node}},
		{"kube-proxy, Local: a VM's query", aks, corev1.ServiceExternalTrafficPolicyLocal, vm, []string{vm.IP}},
		{"kube-proxy, Local: a pod's query, short-circuited", aks, corev1.ServiceExternalTrafficPolicyLocal, pod, []string{pod.IP}},
		{"Cilium, Cluster: a VM's query", gke, corev1.ServiceExternalTrafficPolicyCluster, vm, []string{vm.IP, gke.node}},
		{"Cilium, Cluster: a pod's query, at the socket", gke, corev1.ServiceExternalTrafficPolicyCluster, pod, []string{pod.IP}},
		{"NLB: a pod's query keeps its address", fields["eks-stg"], "", pod, []string{pod.IP}},
		{"NLB: an IPv6 client on IPv4 targets", fields["eks-dual-stack"], "",
			source{&matcher.TrafficPeer{IP: "2600:1f14:abc:1200::99"}, fromOutside, "an IPv6 client"}, []string{"10.0.12.53"}},
	} {
		if got := ips(arrivals(tc.f, svc(tc.etp), tc.src)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: arrives as %v, want %v", tc.name, got, tc.want)
		}
	}
	// The VNet minus the node subnet admits the VM, not the node that
	// forwards its query.
	np := &networkingv1.NetworkPolicy{}
	np.Namespace = "warpdns"
	np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
		{IPBlock: &networkingv1.IPBlock{CIDR: "10.224.0.0/12", Except: []string{"10.224.0.0/16"}}}}}}
	dst := &matcher.TrafficPeer{IP: "10.224.0.50", Internal: &matcher.InternalPeer{Namespace: "warpdns"}}
	verdicts := map[string]bool{}
	for _, a := range arrivals(aks, svc(corev1.ServiceExternalTrafficPolicyCluster), vm) {
		verdicts[a.IP] = admitted(byAddress, []*networkingv1.NetworkPolicy{np}, a, dst, 5353, corev1.ProtocolUDP)
	}
	if !verdicts[vm.IP] || verdicts[aks.node] {
		t.Errorf("verdicts %v: want the VM admitted and the forwarding node refused", verdicts)
	}
}

// TestHelmDataplaneValues: the chart's externalTrafficPolicy (the
// platform's when empty) and affinity values (the user's affinity replaces
// the default spreading; on eks the hairpin anti-affinity is kept in any
// case).
func TestHelmDataplaneValues(t *testing.T) {
	ch := loadChart(t)
	withLB := func(v map[string]any, key string, value any) map[string]any {
		v["loadBalancer"].(map[string]any)[key] = value
		return v
	}
	etp := func(objs []*unstructured.Unstructured) corev1.ServiceExternalTrafficPolicy {
		return convert[corev1.Service](t, find(objs, "Service", "kube-dns-nlb")).Spec.ExternalTrafficPolicy
	}
	for overlay, want := range map[string]corev1.ServiceExternalTrafficPolicy{
		"eks-stg": corev1.ServiceExternalTrafficPolicyCluster, "cilium": corev1.ServiceExternalTrafficPolicyCluster,
		"gke": corev1.ServiceExternalTrafficPolicyLocal, "aks": corev1.ServiceExternalTrafficPolicyLocal, "metallb": corev1.ServiceExternalTrafficPolicyLocal,
	} {
		if got := etp(render(t, ch, chartValues(t, chartCase{overlay, "standalone"}))); got != want {
			t.Errorf("%s: externalTrafficPolicy %q by default, want %q", overlay, got, want)
		}
	}
	v := withLB(chartValues(t, chartCase{"gke", "standalone"}), "externalTrafficPolicy", "Cluster")
	if got := etp(render(t, ch, v)); got != corev1.ServiceExternalTrafficPolicyCluster {
		t.Errorf("loadBalancer.externalTrafficPolicy Cluster renders %q", got)
	}

	zone := map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
		"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{
			"key": "topology.kubernetes.io/zone", "operator": "In", "values": []any{"eu-west-1a", "eu-west-1b"}}}}}}}}
	for _, tc := range []struct {
		overlay, mode string
		affinity      map[string]any
		wantNode      bool // the user's nodeAffinity
		wantSpread    bool // the default preferred anti-affinity between our pods
		wantApart     bool // the required anti-affinity against cloudflared
	}{
		{"gke", "standalone", nil, false, true, false},
		{"gke", "standalone", zone, true, false, false},
		{"gke", "replace", nil, false, false, false},
		{"eks-stg", "standalone", nil, false, true, true},
		{"eks-stg", "standalone", zone, true, false, true},
		{"eks-stg", "replace", nil, false, false, true},
		{"eks-stg", "replace", zone, true, false, true},
	} {
		set := map[string]any{}
		if tc.affinity != nil {
			set["affinity"] = tc.affinity
		}
		objs := render(t, ch, chartValues(t, chartCase{tc.overlay, tc.mode}, set))
		a := podAffinity(t, objs, "warpdns", "coredns")
		gotNode := a != nil && a.NodeAffinity != nil
		gotSpread := a != nil && a.PodAntiAffinity != nil && len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 1
		dns := scheduledPod{dnsPeer(t, objs).Internal, a}
		if gotApart := repels(dns, cloudflaredPod()); gotNode != tc.wantNode || gotSpread != tc.wantSpread || gotApart != tc.wantApart {
			t.Errorf("%s/%s, affinity %v: node affinity %v, spreading %v, apart from cloudflared %v; want %v, %v, %v",
				tc.overlay, tc.mode, tc.affinity, gotNode, gotSpread, gotApart, tc.wantNode, tc.wantSpread, tc.wantApart)
		}
	}
}

// expect judges one packet from src to dst:port/proto and fails the test
// unless the verdict is want.
func expect(t *testing.T, dp dataplane, policies []*networkingv1.NetworkPolicy, src source, dst *matcher.TrafficPeer,
	port int, proto corev1.Protocol, want bool) {
	t.Helper()
	if got := admitted(dp, policies, src, dst, port, proto); got != want {
		verdict := map[bool]string{true: "admitted", false: "refused"}
		t.Errorf("%s (from %s) -> CoreDNS %d/%s is %s, want %s (%s)", src.what, src.IP, port, proto, verdict[got], verdict[want], dp)
	}
}

// admitted is the engine's verdict on one packet, the ipBlocks removed where
// the dataplane does not match them against src.
func admitted(dp dataplane, policies []*networkingv1.NetworkPolicy, src source, dst *matcher.TrafficPeer,
	port int, proto corev1.Protocol) bool {
	policy := matcher.BuildNetworkPolicies(false, policies)
	if dp == byIdentity && src.kind != fromOutside || dp == nodesByCIDR && src.kind == fromPod {
		ignoreIPBlocks(policy)
	}
	traffic := &matcher.Traffic{Source: src.TrafficPeer, Destination: dst, ResolvedPort: port, Protocol: proto}
	return policy.IsTrafficAllowed(traffic).IsAllowed()
}

// ignoreIPBlocks removes every ipBlock rule, as an identity-based dataplane
// does for a packet whose source is a pod (or a node). A target left without
// rules still isolates its pods.
func ignoreIPBlocks(p *matcher.Policy) {
	for _, targets := range []map[string]*matcher.Target{p.Ingress, p.Egress} {
		for _, target := range targets {
			target.Peers = slices.DeleteFunc(target.Peers, func(m matcher.PeerMatcher) bool {
				_, isIPBlock := m.(*matcher.IPPeerMatcher)
				return isIPBlock
			})
		}
	}
}

// dnsPeer is a CoreDNS pod of the build: the standalone Deployment's, or
// for way 1 kubeadm's pods (k8s-app: kube-dns in kube-system).
func dnsPeer(t *testing.T, objs []*unstructured.Unstructured) *matcher.TrafficPeer {
	if d := find(objs, "Deployment", "warpdns"); d != nil {
		dep := convert[appsv1.Deployment](t, d)
		return podPeer(objs, dep.Namespace, dep.Spec.Template.Labels)
	}
	return podPeer(objs, "kube-system", map[string]string{"k8s-app": "kube-dns"})
}

func cloudflaredPeer(t *testing.T, objs []*unstructured.Unstructured) *matcher.TrafficPeer {
	d := find(objs, "Deployment", "cloudflared")
	if d == nil {
		t.Fatal("no Deployment cloudflared")
	}
	dep := convert[appsv1.Deployment](t, d)
	return podPeer(objs, dep.Namespace, dep.Spec.Template.Labels)
}

// podPeer is a pod with these labels in namespace ns, the namespace labeled
// as the build labels it plus kubernetes.io/metadata.name, which the
// apiserver sets on every namespace.
func podPeer(objs []*unstructured.Unstructured, ns string, labels map[string]string) *matcher.TrafficPeer {
	nsLabels := map[string]string{corev1.LabelMetadataName: ns}
	if o := find(objs, "Namespace", ns); o != nil {
		for k, v := range o.GetLabels() {
			nsLabels[k] = v
		}
	}
	return &matcher.TrafficPeer{Internal: &matcher.InternalPeer{Namespace: ns, NamespaceLabels: nsLabels, PodLabels: labels}}
}

func withIP(p *matcher.TrafficPeer, ip string) *matcher.TrafficPeer {
	c := *p
	c.IP = ip
	return &c
}
