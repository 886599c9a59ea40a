package manifests

import (
	"slices"
	"testing"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The NetworkPolicies are evaluated by cyclonus's policy engine (the
// matcher that kubernetes-sigs/network-policy-api's policy-assistant grew
// from; policy-assistant itself is a nested module the Go module proxy does
// not serve), not by reading the YAML: the engine decides, for one packet,
// which policies select the destination pod and whether any of their rules
// admits the source.

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
	// packet from a pod.
	byIdentity dataplane = "ipBlock matches no pod (Cilium, GKE Dataplane V2)"
)

// field describes one overlay's cluster as the test models it: its
// dataplane and the addresses that send to the VPC-facing listener.
type field struct {
	dataplane   dataplane
	cloudflared string // a cloudflared pod's IP
	unrelated   string // the IP of some other pod, in another namespace
	lbSource    string // a client outside the cluster, as the load balancer delivers it
}

// fields: every overlay under manifests/overlays must have an entry. The
// addresses come from each overlay's values: pods in its Pod range (on EKS
// and AKS with flat Azure CNI, in the node subnets), the load balancer's
// source per docs/deploy.md.
var fields = map[string]field{
	// EKS: the VPC CNI gives pods addresses of the node subnets; the NLB
	// sends from its fixed private IP when it does not keep the client's.
	"eks-stg": {byAddress, "10.0.13.7", "10.0.45.9", "10.0.12.53"},
	"eks-prd": {byAddress, "10.1.13.7", "10.1.45.9", "10.1.44.53"},
	// The same cluster with the NLB on both families (its IPv4 sources here).
	"eks-dual-stack": {byAddress, "10.0.13.7", "10.0.45.9", "10.0.12.53"},
	// GKE: Dataplane V2; pods in the Pod range 10.20.0.0/14, a VM of the VPC
	// in the node subnet queries through the passthrough load balancer.
	"gke":              {byIdentity, "10.20.1.5", "10.20.2.9", "10.10.0.7"},
	"gke-two-services": {byIdentity, "10.20.1.5", "10.20.2.9", "10.10.0.7"},
	// AKS, Azure CNI (flat) with Azure NPM: pods in the node subnet
	// 10.224.0.0/16; a VM elsewhere in the VNet.
	"aks": {byAddress, "10.224.0.40", "10.224.0.41", "10.225.3.4"},
	// Home lab: Pod CIDR 10.244.0.0/16, a laptop on the LAN.
	"cilium":  {byIdentity, "10.244.1.5", "10.244.2.9", "192.168.1.20"},
	"metallb": {byAddress, "10.244.1.5", "10.244.2.9", "192.168.1.20"},
}

// inTheField judges objs's NetworkPolicies in the overlay's cluster (its
// fields entry): cloudflared (its pod as the cloudflared build labels it) and
// the load balancer's source reach the VPC-facing listener over UDP and TCP,
// a pod of another namespace does not, in-cluster DNS keeps working.
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
	cf := withIP(cloudflared, f.cloudflared)
	other := &matcher.TrafficPeer{IP: f.unrelated, Internal: &matcher.InternalPeer{
		Namespace:       "shop",
		NamespaceLabels: map[string]string{corev1.LabelMetadataName: "shop"},
		PodLabels:       map[string]string{"app.kubernetes.io/name": "web"},
	}}
	lb := &matcher.TrafficPeer{IP: f.lbSource}
	for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
		expect(t, f.dataplane, policies, cf, dns, 5353, proto, true, "cloudflared's pod")
		expect(t, f.dataplane, policies, lb, dns, 5353, proto, true, "the load balancer's source "+f.lbSource)
		expect(t, f.dataplane, policies, other, dns, 5353, proto, false, "a pod of another namespace")
		expect(t, f.dataplane, policies, other, dns, 53, proto, true, "in-cluster DNS from any pod")
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
	pod := &matcher.TrafficPeer{IP: "10.244.1.5", Internal: &matcher.InternalPeer{Namespace: "cloudflared",
		NamespaceLabels: map[string]string{corev1.LabelMetadataName: "cloudflared"}}}
	outside := &matcher.TrafficPeer{IP: "10.244.9.9"} // not a pod: the ipBlock applies
	policies := []*networkingv1.NetworkPolicy{np}
	expect(t, byAddress, policies, pod, dst, 5353, corev1.ProtocolUDP, true, "a pod in the ipBlock")
	expect(t, byIdentity, policies, pod, dst, 5353, corev1.ProtocolUDP, false, "a pod in the ipBlock")
	expect(t, byIdentity, policies, outside, dst, 5353, corev1.ProtocolUDP, true, "an outside address in the ipBlock")
}

// expect judges one packet from src to dst:port/proto and fails the test
// unless the verdict is want.
func expect(t *testing.T, dp dataplane, policies []*networkingv1.NetworkPolicy, src, dst *matcher.TrafficPeer,
	port int, proto corev1.Protocol, want bool, who string) {
	t.Helper()
	policy := matcher.BuildNetworkPolicies(false, policies)
	if dp == byIdentity && !src.IsExternal() {
		ignoreIPBlocks(policy)
	}
	traffic := &matcher.Traffic{Source: src, Destination: dst, ResolvedPort: port, Protocol: proto}
	if got := policy.IsTrafficAllowed(traffic).IsAllowed(); got != want {
		verdict := map[bool]string{true: "admitted", false: "refused"}
		t.Errorf("%s -> CoreDNS %d/%s is %s, want %s (%s)", who, port, proto, verdict[got], verdict[want], dp)
	}
}

// ignoreIPBlocks removes every ipBlock rule, as an identity-based dataplane
// does for a packet whose source is a pod. A target left without rules
// still isolates its pods.
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
