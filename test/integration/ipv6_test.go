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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warpdns/warpdns/test/cluster"
)

// TestVPCPathOverIPv6 is the IPv6 VPC answer end to end: our coredns runs
// Corefile.example as the chart and manifests/ deploy it (`envalias
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
	if !strings.Contains(e.example, line) {
		t.Fatalf("Corefile.example has no %q", strings.TrimSpace(line))
	}
	deployed := strings.Replace(e.example, line, "\n    envalias {$WARPDNS_ENV}\n", 1)
	t.Setenv("WARPDNS_ENV", "stg") // inherited by coredns, as from the Deployment's env

	ports, err := cluster.FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	corefile, err := cluster.RenderLocal(deployed, cluster.LocalCorefile{
		InClusterPort: ports[0], VPCPort: ports[1], HealthPort: ports[2], ReadyPort: ports[3], MetricsPort: ports[4],
		Kubeconfig: e.cluster.Kubeconfig, Upstream: "127.0.0.1:9", Bind: []string{"::1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	vpc := fmt.Sprintf("[::1]:%d", ports[1])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	coredns, err := cluster.StartCoreDNS(ctx, e.bin, corefile, e.dir, cluster.AllReady(
		cluster.HTTPReady(fmt.Sprintf("http://127.0.0.1:%d/ready", ports[3])), cluster.DNSAnswers(vpc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coredns.Stop() })
	// Bound to [::1] only: nothing answers on the IPv4 loopback.
	if _, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", ports[1]), time.Second); err == nil {
		t.Errorf("the VPC listener answers on 127.0.0.1 too; the Corefile binds ::1 only")
	}

	ns := e.namespace(t, "v6-vpc")
	single := corev1.IPFamilyPolicySingleStack
	v6only := clusterIPService(ns, "api6")
	v6only.Spec.IPFamilyPolicy = &single
	v6only.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	e.service(t, v6only, []cluster.Endpoint{{IP: "fd00:60::10"}, {IP: "fd00:60::11"}, {IP: "fd00:60::12", NotReady: true}}, nil)

	dual := corev1.IPFamilyPolicyRequireDualStack
	both := clusterIPService(ns, "api46")
	both.Spec.IPFamilyPolicy = &dual
	both.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
	e.service(t, both, []cluster.Endpoint{{IP: "10.60.0.20"}, {IP: "fd00:60::20"}}, nil)

	for _, tc := range []struct {
		svc   string
		qtype uint16
		want  string
	}{
		{"api6", dns.TypeAAAA, "[fd00:60::10 fd00:60::11]"}, // ready pods only
		{"api46", dns.TypeAAAA, "[fd00:60::20]"},
		{"api46", dns.TypeA, "[10.60.0.20]"},
	} {
		asked := "stg-" + tc.svc + "." + ns + ".svc.cluster.local."
		for _, network := range []string{"udp6", "tcp6"} {
			t.Run(tc.svc+"/"+dns.TypeToString[tc.qtype]+"/"+network, func(t *testing.T) {
				var r *dns.Msg
				eventually(t, asked, func() error {
					r = query(t, vpc, network, asked, tc.qtype, 4096)
					if got := fmt.Sprint(addresses(r.Answer)); got != tc.want {
						return fmt.Errorf("got %v (%s), want %s", got, rcode(r), tc.want)
					}
					return nil
				})
				for _, rr := range r.Answer {
					if rr.Header().Name != asked {
						t.Errorf("answer owner %s, want the asked name %s", rr.Header().Name, asked)
					}
				}
			})
		}
	}

	// Not a ClusterIP: the IPv6-only Service's own address is never the
	// answer on the VPC path.
	svc, err := e.cluster.Client.CoreV1().Services(ns).Get(ctx, "api6", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := query(t, vpc, "udp6", "stg-api6."+ns+".svc.cluster.local.", dns.TypeAAAA, 4096)
	for _, a := range addresses(r.Answer) {
		if a == svc.Spec.ClusterIP {
			t.Errorf("the VPC path answered the ClusterIP %s", a)
		}
	}
}
