package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/warpdns/warpdns/test/cluster"
)

// TestAliasAnswersLikeTheService: stg-api answers with api's pod IPs on the
// VPC listener, and every name in the reply is the asked one, in the asked
// letter case (0x20 randomisation must validate).
func TestAliasAnswersLikeTheService(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ea-basic")
	e.service(t, cluster.ClusterIPService(ns, "api"), []cluster.Endpoint{{IP: "10.20.0.1"}, {IP: "10.20.0.2"}}, nil)
	asked := "StG-aPi." + strings.ToUpper(ns) + ".svc.Cluster.Local."
	r := waitAnswers(t, e.vpc, "udp", asked, dns.TypeA, 2)
	wantAddrs(t, "alias", r, "10.20.0.1", "10.20.0.2")
	if r.Question[0].Name != asked {
		t.Errorf("question %q, want %q byte for byte", r.Question[0].Name, asked)
	}
	for _, owner := range owners(r.Answer) {
		if owner != asked {
			t.Errorf("owner %q, want the asked name %q", owner, asked)
		}
	}
}

// TestAliasSRVTargetsStayInTheEnvironment: SRV targets and additional records
// name stg-api, so follow-up lookups route to this cluster again, and those
// targets resolve.
func TestAliasSRVTargetsStayInTheEnvironment(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ea-srv")
	e.service(t, cluster.ClusterIPService(ns, "api"), []cluster.Endpoint{{IP: "10.21.0.1"}, {IP: "10.21.0.2"}}, nil)
	alias := "stg-api." + ns + ".svc.cluster.local."
	r := waitAnswers(t, e.vpc, "udp", "_http._tcp."+alias, dns.TypeSRV, 2)
	for _, rr := range r.Answer {
		target := rr.(*dns.SRV).Target
		if !strings.HasSuffix(target, "."+alias) {
			t.Errorf("SRV target %q is not under %q", target, alias)
		}
		if len(ask(t, e.vpc, target, dns.TypeA).Answer) != 1 {
			t.Errorf("SRV target %q does not resolve through the alias", target)
		}
	}
	for _, owner := range owners(r.Extra) {
		if owner != "." && !strings.HasSuffix(owner, "."+alias) {
			t.Errorf("additional record %q is not under %q", owner, alias)
		}
	}
}

// TestAliasHeadless300: a 300-endpoint headless Service through the alias:
// UDP truncates (TC), TCP is complete and speaks only of the alias.
func TestAliasHeadless300(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ea-big")
	svc := cluster.ClusterIPService(ns, "pods")
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	var eps []cluster.Endpoint
	for i := range 300 {
		eps = append(eps, cluster.Endpoint{IP: fmt.Sprintf("10.22.%d.%d", i/250, i%250+1)})
	}
	e.service(t, svc, eps, nil)
	alias := "stg-pods." + ns + ".svc.cluster.local."
	r := waitAnswers(t, e.vpc, "tcp", alias, dns.TypeA, 300)
	for _, owner := range owners(r.Answer) {
		if owner != alias {
			t.Fatalf("owner %q, want %q", owner, alias)
		}
	}
	if u := query(t, e.vpc, "udp", alias, dns.TypeA, 0); !u.Truncated || wireLen(u) > 512 {
		t.Errorf("UDP: TC=%v, %d bytes; want TC within 512 bytes", u.Truncated, wireLen(u))
	}
}

// TestAliasNeverShadowsARealService: a Service literally named stg-api is
// served as itself; another environment's prefix is not rewritten (NXDOMAIN
// with an SOA); unprefixed names are untouched.
func TestAliasNeverShadowsARealService(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ea-collide")
	e.service(t, cluster.ClusterIPService(ns, "api"), []cluster.Endpoint{{IP: "10.24.0.1"}}, nil)
	e.service(t, cluster.ClusterIPService(ns, "stg-api"), []cluster.Endpoint{{IP: "10.24.9.9"}}, nil)
	waitAddrs(t, e.vpc, "udp", "stg-api."+ns+".svc.cluster.local.", dns.TypeA, "10.24.9.9")
	r := ask(t, e.vpc, "prd-api."+ns+".svc.cluster.local.", dns.TypeA)
	if rcode(r) != "NXDOMAIN" || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("another environment's name: want NXDOMAIN with SOA, got\n%v", r)
	}
	wantAddrs(t, "unprefixed", ask(t, e.vpc, "api."+ns+".svc.cluster.local.", dns.TypeA), "10.24.0.1")
}

// TestAliasNegativeAnswersKeepSOA: an alias of a missing Service is NXDOMAIN
// with the zone's SOA; NODATA keeps it too.
func TestAliasNegativeAnswersKeepSOA(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ea-negative")
	e.service(t, cluster.ClusterIPService(ns, "api"), []cluster.Endpoint{{IP: "10.25.0.1"}}, nil)
	waitAnswers(t, e.vpc, "udp", "stg-api."+ns+".svc.cluster.local.", dns.TypeA, 1)
	for _, c := range []struct {
		name  string
		qtype uint16
		rcode string
	}{
		{"stg-missing." + ns + ".svc.cluster.local.", dns.TypeA, "NXDOMAIN"},
		{"stg-api." + ns + ".svc.cluster.local.", dns.TypeAAAA, "NOERROR"},
	} {
		r := ask(t, e.vpc, c.name, c.qtype)
		if rcode(r) != c.rcode || len(r.Answer) != 0 || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("%s %s: want %s with an SOA, got\n%v", c.name, dns.TypeToString[c.qtype], c.rcode, r)
		}
	}
}

// TestAliasBehindCache: with cache caching the cluster zone (it runs after
// envalias), a repeated alias query is answered from the cache and still
// speaks of the asked name, in the asked case.
func TestAliasBehindCache(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ea-cache")
	e.service(t, cluster.ClusterIPService(ns, "api"), []cluster.Endpoint{{IP: "10.26.0.1"}}, nil)
	cached := e.variant(t, "        disable success cluster.local\n        disable denial cluster.local\n", "")
	for i, asked := range []string{"stg-api." + ns + ".svc.cluster.local.", "STG-Api." + ns + ".svc.cluster.local.", "sTg-aPi." + ns + ".svc.cluster.local."} {
		r := waitAnswers(t, cached.vpc, "udp", asked, dns.TypeA, 1)
		if r.Question[0].Name != asked || r.Answer[0].Header().Name != asked {
			t.Errorf("query %d: asked %q, reply speaks of %q / %q", i, asked, r.Question[0].Name, r.Answer[0].Header().Name)
		}
		wantAddrs(t, "alias through the cache", r, "10.26.0.1")
	}
}

// TestPluginMetrics: both plugins count what they serve, labelled with the
// server and the environment or query type.
func TestPluginMetrics(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "ea-metrics")
	e.service(t, cluster.ClusterIPService(ns, "api"), []cluster.Endpoint{{IP: "10.27.0.1"}}, nil)
	waitAnswers(t, e.vpc, "udp", "stg-api."+ns+".svc.cluster.local.", dns.TypeA, 1)
	families, err := cluster.Scrape(http.DefaultClient, e.metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		metric string
		labels map[string]string
	}{
		{"coredns_envalias_requests_total", map[string]string{"env": "stg", "server": "dns://" + e.vpc}},
		{"coredns_headlessonly_requests_total", map[string]string{"server": "dns://" + e.vpc, "type": "A"}},
	} {
		if !cluster.HasSeries(families, want.metric, want.labels) {
			t.Errorf("metrics lack %s%v; they have %v", want.metric, want.labels, families[want.metric])
		}
	}
}
