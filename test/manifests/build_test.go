package manifests

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// clusterScoped are the kinds our manifests create that have no namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"CiliumLoadBalancerIPPool": true, "CustomResourceDefinition": true,
}

// TestBuild builds every kustomization and checks what a user would otherwise
// find out from a broken load balancer or a pod that does not start: the
// objects, the images, the PodDisruptionBudgets, the deployed Corefile and
// environment, and for the overlays their values and NetworkPolicies.
func TestBuild(t *testing.T) {
	fsys, ks := loadManifests(t)
	example := readExample(t)
	cloudflared := cloudflaredPeer(t, build(t, fsys, "/manifests/cloudflared"))
	for _, k := range ks {
		t.Run(k.name, func(t *testing.T) {
			objs := build(t, fsys, k.dir)
			if len(objs) == 0 {
				t.Fatal("no objects")
			}
			for _, o := range objs {
				if !clusterScoped[o.GetKind()] && o.GetNamespace() == "" {
					t.Errorf("%s has no namespace", describe(o))
				}
				if o.GetKind() == "Service" && o.GetName() == "kube-dns" ||
					o.GetKind() == "ConfigMap" && o.GetName() == "coredns" {
					t.Errorf("%s must stay untouched (in-cluster DNS), but the build changes it", describe(o))
				}
			}
			checkImages(t, objs)
			checkPodDisruptionBudgets(t, objs)
			if k.name == "cloudflared" {
				checkCloudflared(t, objs)
				return
			}
			checkWarpdns(t, fsys, k, objs)
			checkDeployedCorefile(t, example, objs, corefileValues{}, overlayEnv(k.name))
			if overlay, ok := strings.CutPrefix(k.name, "overlays/"); ok {
				inTheField(t, overlay, objs, cloudflared)
				checkOverlayValues(t, k, objs)
			}
		})
	}
}

// checkImages: every image is pinned to a tag (or digest), none is latest.
func checkImages(t *testing.T, objs []*unstructured.Unstructured) {
	for _, d := range deployments(t, objs) {
		for _, c := range d.Spec.Template.Spec.Containers {
			if strings.Contains(c.Image, "@sha256:") {
				continue
			}
			_, tag, _ := strings.Cut(c.Image[strings.LastIndex(c.Image, "/")+1:], ":")
			if tag == "" || tag == "latest" {
				t.Errorf("Deployment %s: image %q is not pinned to a version", d.Name, c.Image)
			}
		}
	}
}

// checkWarpdns checks the DNS side: the Corefile in the ConfigMap, the
// workload (or the patch for the existing one) and kube-dns-nlb.
func checkWarpdns(t *testing.T, fsys filesys.FileSystem, k kustomization, objs []*unstructured.Unstructured) {
	// The ConfigMap carries the kustomization's Corefile (the base's, unless
	// the overlay replaces it).
	cm, corefile := corefileConfigMap(t, objs)
	want, err := fsys.ReadFile(path.Join(k.dir, "Corefile"))
	if err != nil { // the matrix: the base's
		way := "replace-kube-dns"
		if cm.GetName() == "warpdns" {
			way = "standalone"
		}
		want, err = fsys.ReadFile("/manifests/base/" + way + "/Corefile")
		if err != nil {
			t.Fatal(err)
		}
	}
	if corefile != string(want) {
		t.Errorf("ConfigMap %s: Corefile differs from the kustomization's Corefile file", cm.GetName())
	}

	// The pods kube-dns-nlb selects, and their labels.
	var podLabels map[string]string
	var ns string
	if d := find(objs, "Deployment", "warpdns"); d != nil {
		dep := convert[appsv1.Deployment](t, d)
		podLabels, ns = dep.Spec.Template.Labels, dep.Namespace
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil && v.ConfigMap.Name != cm.GetName() {
				t.Errorf("Deployment warpdns mounts ConfigMap %s, the Corefile is in %s", v.ConfigMap.Name, cm.GetName())
			}
		}
		checkRBAC(t, objs, dep)
	} else if d := find(objs, "Deployment", "coredns"); d != nil {
		// The patch for kubeadm's Deployment, whose pods are k8s-app=kube-dns.
		podLabels, ns = map[string]string{"k8s-app": "kube-dns"}, "kube-system"
		dep := convert[appsv1.Deployment](t, d)
		if dep.Spec.Selector != nil || dep.Spec.Replicas != nil {
			t.Error("the coredns patch must not set the selector or replicas of the existing Deployment")
		}
		if len(dep.Spec.Template.Spec.Volumes) != 1 || dep.Spec.Template.Spec.Volumes[0].Name != "config-volume" ||
			dep.Spec.Template.Spec.Volumes[0].ConfigMap.Name != cm.GetName() {
			t.Errorf("the coredns patch must point volume config-volume (kubeadm's name) at ConfigMap %s", cm.GetName())
		}
		// Without the explicit empty list, server-side apply would keep
		// kubeadm's NET_BIND_SERVICE.
		caps, found, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "template", "spec", "containers")
		if !found || !hasEmptyAdd(caps) {
			t.Error("the coredns patch must set securityContext.capabilities.add: [] to drop kubeadm's NET_BIND_SERVICE")
		}
	} else {
		t.Fatal("neither Deployment warpdns nor the coredns patch")
	}
	for _, d := range deployments(t, objs) {
		checkPodSecurity(t, d, d.Name == "coredns" && d.Spec.Selector == nil)
	}

	svc := find(objs, "Service", "kube-dns-nlb")
	if svc == nil {
		t.Fatal("no Service kube-dns-nlb")
	}
	s := convert[corev1.Service](t, svc)
	if s.Namespace != ns {
		t.Errorf("kube-dns-nlb is in namespace %s, its pods in %s", s.Namespace, ns)
	}
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Errorf("kube-dns-nlb: type %s, want LoadBalancer", s.Spec.Type)
	}
	if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(podLabels)) || len(s.Spec.Selector) == 0 {
		t.Errorf("kube-dns-nlb selects %v, the CoreDNS pods are labeled %v", s.Spec.Selector, podLabels)
	}
	ports := func(s *corev1.Service) (l []string) {
		for _, p := range s.Spec.Ports {
			l = append(l, fmt.Sprintf("%d/%s->%s", p.Port, p.Protocol, p.TargetPort.String()))
		}
		return l
	}
	got := ports(s)
	// GKE before 1.36.2: TCP in a second Service on the same address.
	if tcp := find(objs, "Service", "kube-dns-nlb-tcp"); tcp != nil {
		ts := convert[corev1.Service](t, tcp)
		got = append(got, ports(ts)...)
		const addr = "networking.gke.io/load-balancer-ip-addresses"
		if ts.Namespace != s.Namespace || !slices.Equal(keys(ts.Spec.Selector), keys(s.Spec.Selector)) ||
			ts.Annotations[addr] != s.Annotations[addr] || ts.Spec.Type != corev1.ServiceTypeLoadBalancer ||
			!slices.Equal(ts.Spec.LoadBalancerSourceRanges, s.Spec.LoadBalancerSourceRanges) {
			t.Errorf("kube-dns-nlb-tcp must be a LoadBalancer on kube-dns-nlb's address, pods and source ranges")
		}
	}
	slices.Sort(got)
	if want := []string{"53/TCP->5353", "53/UDP->5353"}; !slices.Equal(got, want) {
		t.Errorf("kube-dns-nlb ports %v, want %v (the VPC-facing listener)", got, want)
	}
}

func hasEmptyAdd(containers any) bool {
	list, _ := containers.([]any)
	for _, c := range list {
		add, found, _ := unstructured.NestedFieldNoCopy(c.(map[string]any), "securityContext", "capabilities", "add")
		if l, ok := add.([]any); found && ok && len(l) == 0 {
			return true
		}
	}
	return false
}

// checkRBAC: the standalone ServiceAccount may list and watch what the
// kubernetes plugin reads, and nothing else.
func checkRBAC(t *testing.T, objs []*unstructured.Unstructured, dep *appsv1.Deployment) {
	sa := find(objs, "ServiceAccount", dep.Spec.Template.Spec.ServiceAccountName)
	if sa == nil || sa.GetNamespace() != dep.Namespace {
		t.Errorf("no ServiceAccount %s/%s", dep.Namespace, dep.Spec.Template.Spec.ServiceAccountName)
	}
	role := find(objs, "ClusterRole", "warpdns")
	if role == nil {
		t.Fatal("no ClusterRole warpdns")
	}
	var grants []string
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for _, r := range rules {
		r := r.(map[string]any)
		groups, _, _ := unstructured.NestedStringSlice(r, "apiGroups")
		resources, _, _ := unstructured.NestedStringSlice(r, "resources")
		verbs, _, _ := unstructured.NestedStringSlice(r, "verbs")
		for _, g := range groups {
			for _, res := range resources {
				for _, v := range verbs {
					grants = append(grants, g+"/"+res+":"+v)
				}
			}
		}
	}
	slices.Sort(grants)
	want := []string{
		"/namespaces:list", "/namespaces:watch", "/services:list", "/services:watch",
		"discovery.k8s.io/endpointslices:list", "discovery.k8s.io/endpointslices:watch",
	}
	if !slices.Equal(grants, want) {
		t.Errorf("ClusterRole warpdns grants %v, want exactly %v", grants, want)
	}
	binding := find(objs, "ClusterRoleBinding", "warpdns")
	if binding == nil {
		t.Fatal("no ClusterRoleBinding warpdns")
	}
	subjects, _, _ := unstructured.NestedSlice(binding.Object, "subjects")
	if len(subjects) != 1 || subjects[0].(map[string]any)["namespace"] != dep.Namespace ||
		subjects[0].(map[string]any)["name"] != dep.Spec.Template.Spec.ServiceAccountName {
		t.Errorf("ClusterRoleBinding warpdns binds %v, want the ServiceAccount %s/%s", subjects, dep.Namespace, dep.Spec.Template.Spec.ServiceAccountName)
	}
}

func checkCloudflared(t *testing.T, objs []*unstructured.Unstructured) {
	d := find(objs, "Deployment", "cloudflared")
	if d == nil {
		t.Fatal("no Deployment cloudflared")
	}
	dep := convert[appsv1.Deployment](t, d)
	checkPodSecurity(t, dep, false)
	c := dep.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	if args != "tunnel --no-autoupdate --protocol quic --metrics 0.0.0.0:2000 run" {
		t.Errorf("cloudflared args %q", args)
	}
	// The token from a file of the mounted Secret (TUNNEL_TOKEN_FILE), not
	// from an environment variable.
	var tokenFile string
	for _, e := range c.Env {
		if e.Name == "TUNNEL_TOKEN" {
			t.Error("cloudflared: TUNNEL_TOKEN puts the token in the environment; use TUNNEL_TOKEN_FILE and a mounted Secret")
		}
		if e.Name == "TUNNEL_TOKEN_FILE" {
			tokenFile = e.Value
		}
	}
	var mounted bool
	for _, m := range c.VolumeMounts {
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && m.ReadOnly && tokenFile != "" &&
				strings.HasPrefix(tokenFile, m.MountPath+"/") {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("cloudflared must read the token from TUNNEL_TOKEN_FILE (%q) in a read-only mounted Secret", tokenFile)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/ready" ||
		c.ReadinessProbe.HTTPGet.Port.String() != "metrics" || c.Ports[0].ContainerPort != 2000 {
		t.Error("cloudflared needs a readiness probe on /ready of its metrics port 2000")
	}
	if dep.Spec.Template.Spec.AutomountServiceAccountToken == nil || *dep.Spec.Template.Spec.AutomountServiceAccountToken {
		t.Error("cloudflared does not talk to the Kubernetes API: automountServiceAccountToken: false")
	}
	for _, o := range objs {
		if o.GetKind() == "Secret" {
			t.Errorf("%s: the token Secret must not be part of the manifests", describe(o))
		}
	}
}

// checkPodSecurity checks the security defaults of every workload: non-root,
// read-only root filesystem, no capabilities, seccomp RuntimeDefault,
// resources, probes, spreading and a PodDisruptionBudget. A partial
// Deployment (the patch for kubeadm's coredns) is checked for the fields it
// sets; the merged result is checked by TestDryRun.
func checkPodSecurity(t *testing.T, d *appsv1.Deployment, partial bool) {
	t.Helper()
	name := "Deployment " + d.Namespace + "/" + d.Name
	pod := d.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext must set runAsNonRoot and a non-zero runAsUser", name)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile RuntimeDefault", name)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("%s: host namespaces", name)
	}
	if len(pod.TopologySpreadConstraints) == 0 && (pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil) {
		t.Errorf("%s: no anti-affinity or topology spread", name)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		cname := name + " container " + c.Name
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) != 0 ||
			sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: securityContext must forbid privilege escalation, drop ALL capabilities and add none, and mount the root filesystem read-only", cname)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources must request CPU and memory and limit memory", cname)
		}
		if !partial && (c.ReadinessProbe == nil || c.LivenessProbe == nil) {
			t.Errorf("%s: readiness and liveness probes", cname)
		}
		if c.Name == "coredns" && !partial {
			checkCoreDNSContainer(t, cname, c, pod)
		}
	}
	if !partial && (d.Spec.Replicas == nil || *d.Spec.Replicas < 2) {
		t.Errorf("%s: at least 2 replicas", name)
	}
}

// checkCoreDNSContainer: the probes and ports the issue asks for, and the
// sysctl that lets the unprivileged process serve :53.
func checkCoreDNSContainer(t *testing.T, name string, c corev1.Container, pod corev1.PodSpec) {
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)] = true
	}
	for _, p := range []string{"53/UDP", "53/TCP", "5353/UDP", "5353/TCP", "9153/TCP", "8080/TCP", "8181/TCP"} {
		if !ports[p] {
			t.Errorf("%s: no container port %s", name, p)
		}
	}
	probe := func(p *corev1.Probe, path string, port int) bool {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			return false
		}
		if p.HTTPGet.Port.IntValue() == port {
			return true
		}
		for _, cp := range c.Ports {
			if cp.Name == p.HTTPGet.Port.String() && int(cp.ContainerPort) == port {
				return true
			}
		}
		return false
	}
	if !probe(c.LivenessProbe, "/health", 8080) || !probe(c.ReadinessProbe, "/ready", 8181) {
		t.Errorf("%s: liveness /health on 8080 and readiness /ready on 8181", name)
	}
	var sysctl bool
	if pod.SecurityContext != nil {
		for _, s := range pod.SecurityContext.Sysctls {
			sysctl = sysctl || s.Name == "net.ipv4.ip_unprivileged_port_start" && (s.Value == "53" || s.Value == "0")
		}
	}
	if !sysctl {
		t.Errorf("%s: listening on 53 with no capability needs sysctl net.ipv4.ip_unprivileged_port_start <= 53", name)
	}
}

// checkOverlayValues checks the values a user fills in, as far as they can be
// checked without the cloud: that they are there, well formed, and agree
// with each other.
func checkOverlayValues(t *testing.T, k kustomization, objs []*unstructured.Unstructured) {
	wantPlatform := map[string]string{"eks": "aws", "gke": "gke", "aks": "aks", "cilium": "cilium", "metallb": "metallb"}
	prefix, _, _ := strings.Cut(path.Base(k.dir), "-")
	platform := platformOf(objs)
	if platform != wantPlatform[prefix] {
		t.Fatalf("%s uses platform %q, want %q", k.name, platform, wantPlatform[prefix])
	}
	svc := find(objs, "Service", "kube-dns-nlb")
	a := svc.GetAnnotations()
	ranges, _, _ := unstructured.NestedStringSlice(svc.Object, "spec", "loadBalancerSourceRanges")
	for _, r := range ranges {
		if _, err := netip.ParsePrefix(r); err != nil {
			t.Errorf("loadBalancerSourceRanges: %v", err)
		}
	}
	if len(ranges) == 0 {
		t.Error("kube-dns-nlb: set loadBalancerSourceRanges (where the queries come from: cloudflared's pods)")
	}
	addr := func(what, s string) netip.Addr {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || !ip.Is4() {
			t.Errorf("%s: %q is not an IPv4 address", what, s)
		}
		return ip
	}
	switch platform {
	case "aws":
		for _, key := range []string{"type", "nlb-target-type", "scheme", "enable-tcp-udp-listener"} {
			if a["service.beta.kubernetes.io/aws-load-balancer-"+key] == "" {
				t.Errorf("kube-dns-nlb: no aws-load-balancer-%s", key)
			}
		}
		subnets := strings.Split(a["service.beta.kubernetes.io/aws-load-balancer-subnets"], ",")
		ips := strings.Split(a["service.beta.kubernetes.io/aws-load-balancer-private-ipv4-addresses"], ",")
		if subnets[0] == "" || len(subnets) != len(ips) {
			t.Errorf("kube-dns-nlb: %d subnets and %d private IPs; the controller wants one IP per subnet", len(subnets), len(ips))
		}
		for _, s := range ips {
			ip := addr("aws-load-balancer-private-ipv4-addresses", s)
			if !inPrefixes(ranges, ip) {
				t.Errorf("the NLB IP %s is outside loadBalancerSourceRanges %v (expected the VPC CIDR)", ip, ranges)
			}
		}
		// The readiness-gate label: the field model (networkpolicy_test.go).
	case "gke":
		if a["networking.gke.io/load-balancer-ip-addresses"] == "" {
			t.Error("kube-dns-nlb: networking.gke.io/load-balancer-ip-addresses names no reserved address")
		}
		// One Service with UDP and TCP: the class; two Services: the annotation.
		class, _, _ := unstructured.NestedString(svc.Object, "spec", "loadBalancerClass")
		mixed := find(objs, "Service", "kube-dns-nlb-tcp") == nil
		if mixed && class != "networking.gke.io/l4-regional-internal" {
			t.Errorf("kube-dns-nlb: a mixed-protocol internal Service needs loadBalancerClass networking.gke.io/l4-regional-internal, has %q", class)
		}
		if !mixed && (class != "" || a["networking.gke.io/load-balancer-type"] != "Internal") {
			t.Error("kube-dns-nlb (two Services, GKE before 1.36.2): the Internal annotation and no loadBalancerClass")
		}
	case "aks":
		addr("azure-load-balancer-ipv4", a["service.beta.kubernetes.io/azure-load-balancer-ipv4"])
		if a["service.beta.kubernetes.io/azure-deny-all-except-load-balancer-source-ranges"] != "true" {
			t.Error("kube-dns-nlb: without azure-deny-all-except-load-balancer-source-ranges the VNet rule admits everyone")
		}
	case "cilium":
		ip := addr("lbipam.cilium.io/ips", a["lbipam.cilium.io/ips"])
		pool := find(objs, "CiliumLoadBalancerIPPool", "warpdns")
		blocks, _, _ := unstructured.NestedSlice(pool.Object, "spec", "blocks")
		var cidrs []string
		for _, b := range blocks {
			cidrs = append(cidrs, fmt.Sprint(b.(map[string]any)["cidr"]))
		}
		if !inPrefixes(cidrs, ip) {
			t.Errorf("the IP %s is not in the CiliumLoadBalancerIPPool's blocks %v", ip, blocks)
		}
		sel, _, _ := unstructured.NestedStringMap(pool.Object, "spec", "serviceSelector", "matchLabels")
		if !labels.SelectorFromSet(sel).Matches(labels.Set(svc.GetLabels())) {
			t.Errorf("the pool's serviceSelector %v does not select kube-dns-nlb (labels %v)", sel, svc.GetLabels())
		}
	case "metallb":
		ip := addr("metallb.io/loadBalancerIPs", a["metallb.io/loadBalancerIPs"])
		if a["metallb.universe.tf/loadBalancerIPs"] != a["metallb.io/loadBalancerIPs"] {
			t.Error("kube-dns-nlb: metallb.universe.tf/loadBalancerIPs (MetalLB before 0.14.9) must equal metallb.io/loadBalancerIPs")
		}
		pool := find(objs, "IPAddressPool", "warpdns")
		addrs, _, _ := unstructured.NestedStringSlice(pool.Object, "spec", "addresses")
		if !inPrefixes(addrs, ip) {
			t.Errorf("the IP %s is not in the IPAddressPool's addresses %v", ip, addrs)
		}
	}
}

// inPrefixes: one of the CIDRs contains ip.
func inPrefixes(cidrs []string, ip netip.Addr) bool {
	return slices.ContainsFunc(cidrs, func(s string) bool {
		p, err := netip.ParsePrefix(s)
		return err == nil && p.Contains(ip)
	})
}

// checkPodDisruptionBudgets: every full Deployment has a PDB that selects its
// pods and lets at most one go at a time.
func checkPodDisruptionBudgets(t *testing.T, objs []*unstructured.Unstructured) {
	pdbs := ofKind[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget")
	for _, d := range deployments(t, objs) {
		if d.Spec.Selector == nil {
			continue // the patch for the existing coredns
		}
		covered := slices.ContainsFunc(pdbs, func(pdb *policyv1.PodDisruptionBudget) bool {
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			return err == nil && pdb.Namespace == d.Namespace && sel.Matches(labels.Set(d.Spec.Template.Labels)) &&
				(pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.IntValue() == 1 ||
					pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() >= 1)
		})
		if !covered {
			t.Errorf("Deployment %s/%s has no PodDisruptionBudget", d.Namespace, d.Name)
		}
	}
}
