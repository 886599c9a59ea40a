package manifests

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warpdns/warpdns/test/cluster"
)

// The source addresses of TestACLGlobalUnicastSource, inside its network
// namespace: global unicast IPv6 addresses as the pods of an EKS IPv6
// cluster have ("In an IPv6 EKS cluster, nodes and Pods receive public IPv6
// addresses"; VPCs get their /56 "from within Amazon's GUA" and cannot use
// ULA, https://aws.github.io/aws-eks-best-practices/networking/ipv6/), from
// the documentation prefix 2001:db8::/32 (RFC 3849), which is global unicast
// too and never leaves the namespace.
const (
	aclServerIP  = "2001:db8:53::53" // both listeners bind it
	aclPodRange  = "2001:db8:1::/64" // "the VPC's IPv6 CIDR": configured
	aclPodIP     = "2001:db8:1::10"  // a pod in it
	aclOutsideIP = "2001:db8:2::10"  // a source in no configured range
)

// TestACLGlobalUnicastSource runs the Corefile the chart renders for the
// replace mode (one server block serving the pods on :53 and the VPC
// listener) with our coredns, inside a network namespace of its own with a
// control plane of its own, and asks it from a global unicast IPv6 source.
// With Corefile.example's acl networks the query is REFUSED on both
// listeners: on :53 that is every pod's cluster.local lookup, a cluster-wide
// outage. With the pods' range in acl.networks it is answered, and a source
// outside every configured range is still REFUSED.
func TestACLGlobalUnicastSource(t *testing.T) {
	for _, ip := range []string{aclPodIP, aclOutsideIP} {
		if a := netip.MustParseAddr(ip); !a.IsGlobalUnicast() || a.IsPrivate() {
			t.Fatalf("%s must be a global unicast address outside fc00::/7", ip)
		}
	}
	bin := cluster.SharedEnv(t).OurBin
	ns := cluster.NetnsForTest(t, "manifests-acl")
	for _, ip := range []string{aclServerIP, aclPodIP, aclOutsideIP} {
		cluster.IPNetns(t, ns, "addr", "add", ip+"/128", "dev", "lo", "nodad")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{Netns: ns, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	demo, err := cluster.SeedDemo(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	apiReady := slices.Sorted(slices.Values(demo.APIReadyIPs))

	ch := loadChart(t)
	defaults := chartValues(t, chartCase{"eks-stg", "replace"})
	nets := slices.Concat(aclNetworksOf(t, readExample(t)), []string{aclPodRange})
	configured := chartValues(t, chartCase{"eks-stg", "replace"}, map[string]any{"acl": map[string]any{"networks": toAny(nets)}})
	for _, tc := range []struct {
		name     string
		values   map[string]any
		answered map[string]bool // per source
	}{
		{"Corefile.example's networks", defaults, map[string]bool{aclPodIP: false, aclOutsideIP: false}},
		{"acl.networks with " + aclPodRange, configured, map[string]bool{aclPodIP: true, aclOutsideIP: false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, corefile := corefileConfigMap(t, render(t, ch, tc.values))
			p := startCoreDNSIn(t, ctx, ns, bin, c.Kubeconfig, expandEnv(corefile, "stg"))
			for _, from := range []string{aclPodIP, aclOutsideIP} {
				for _, q := range []struct {
					listener, name string
					port           int
					want           []string
				}{
					{"in-cluster :53", "api.platform.svc.cluster.local.", p.DNS, []string{demo.APIClusterIP}},
					{"VPC :5353", "stg-api.platform.svc.cluster.local.", p.VPC, apiReady},
				} {
					r, err := exchangeFrom(ns, from, net.JoinHostPort(aclServerIP, fmt.Sprint(q.port)), q.name)
					if err != nil {
						t.Errorf("%s from %s: %v", q.listener, from, err)
						continue
					}
					got := cluster.Addresses(r.Answer)
					switch {
					case tc.answered[from] && (r.Rcode != dns.RcodeSuccess || !slices.Equal(got, q.want)):
						t.Errorf("%s, %s from %s: %s %v, want NOERROR %v", q.listener, q.name, from, dns.RcodeToString[r.Rcode], got, q.want)
					case !tc.answered[from] && r.Rcode != dns.RcodeRefused:
						t.Errorf("%s, %s from %s: %s %v, want REFUSED", q.listener, q.name, from, dns.RcodeToString[r.Rcode], got)
					default:
						t.Logf("%s, %s from %s: %s %v", q.listener, q.name, from, dns.RcodeToString[r.Rcode], got)
					}
				}
			}
		})
	}
}

// startCoreDNSIn runs binary with a Corefile of Corefile.example's shape in
// network namespace ns, both listeners bound to aclServerIP and 127.0.0.1,
// against the control plane of kubeconfig (inside ns), until the test ends.
func startCoreDNSIn(t *testing.T, ctx context.Context, ns, binary, kubeconfig, corefile string) cluster.Ports {
	t.Helper()
	p, err := cluster.FreeCoreDNSPorts()
	if err != nil {
		t.Fatal(err)
	}
	l := p.Local(kubeconfig, cluster.NoUpstream)
	l.Bind = []string{aclServerIP, "127.0.0.1"}
	text, err := cluster.RenderLocal(corefile, l)
	if err != nil {
		t.Fatal(err)
	}
	ready := cluster.AllReady(cluster.HTTPReadyIn(ns, fmt.Sprintf("http://127.0.0.1:%d/ready", p.Ready)),
		cluster.DNSAnswersIn(ns, p.DNSAddr()), cluster.DNSAnswersIn(ns, p.VPCAddr()))
	c, err := cluster.StartCoreDNSIn(ctx, ns, binary, text, t.TempDir(), ready)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Stop()
		if t.Failed() {
			t.Logf("coredns log:\n%s", c.Log())
		}
	})
	return p
}

// exchangeFrom asks server an A question for name over UDP from local address
// from, inside network namespace ns.
func exchangeFrom(ns, from, server, name string) (*dns.Msg, error) {
	var r *dns.Msg
	err := cluster.InNetns(ns, func() (err error) {
		c := &dns.Client{Timeout: 3 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err = c.Exchange(m, server)
		return err
	})
	return r, err
}

// toAny converts a []string to the []any that decoded values hold.
func toAny(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}
