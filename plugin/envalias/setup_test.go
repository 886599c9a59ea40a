package envalias

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/kubernetes"
	"github.com/coredns/coredns/plugin/kubernetes/object"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/warpdns/warpdns/internal/kubedns"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		input   string
		envs    []string
		sep     string
		zones   []string
		domains []string
	}{
		{`envalias stg`, []string{"stg"}, "-", []string{"cluster.local."}, nil},
		{`envalias STG prd`, []string{"stg", "prd"}, "-", []string{"cluster.local."}, nil},
		{`envalias stg stg-eu dev`, []string{"stg-eu", "stg", "dev"}, "-", []string{"cluster.local."}, nil},
		{`envalias stg {
			separator --
		}`, []string{"stg"}, "--", []string{"cluster.local."}, nil},
		{`envalias stg {
			separator _
			zones Cluster.Local example.org.
			domain k8s.example.com k8s.example.net.
		}`, []string{"stg"}, "_", []string{"cluster.local.", "example.org."}, []string{"k8s.example.com.", "k8s.example.net."}},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = []string{"cluster.local:53"}
		e, err := parse(c)
		if err != nil {
			t.Fatalf("test %d: unexpected error: %s", i, err)
		}
		if !slices.Equal(e.envs, tc.envs) {
			t.Errorf("test %d: envs %v, want %v", i, e.envs, tc.envs)
		}
		if e.sep != tc.sep {
			t.Errorf("test %d: separator %q, want %q", i, e.sep, tc.sep)
		}
		if !slices.Equal(e.Zones, tc.zones) {
			t.Errorf("test %d: zones %v, want %v", i, e.Zones, tc.zones)
		}
		if !slices.Equal(e.domains, tc.domains) {
			t.Errorf("test %d: domains %v, want %v", i, e.domains, tc.domains)
		}
	}
}

func TestSetup(t *testing.T) {
	c := caddy.NewTestController("dns", "envalias stg")
	if err := setup(c); err != nil {
		t.Fatalf("unexpected error: %s", err)
	}
	if n := len(dnsserver.GetConfig(c).Plugin); n != 1 {
		t.Errorf("%d plugins added, want 1", n)
	}
}

func TestSetupErrors(t *testing.T) {
	t.Parallel()
	const prefix = "plugin/envalias: Testfile:"
	tests := []struct {
		input string
		err   string
	}{
		{`envalias`, "1 - Error during parsing: at least one ENV is required"},
		{`envalias {
			separator -
		}`, "1 - Error during parsing: at least one ENV is required"},
		{`envalias stg_x`, `1 - Error during parsing: ENV "stg_x" is not a valid DNS label`},
		{`envalias -stg`, `1 - Error during parsing: ENV "-stg" is not a valid DNS label`},
		{`envalias stg.eu`, `1 - Error during parsing: ENV "stg.eu" is not a valid DNS label`},
		{`envalias stg prd STG`, `1 - Error during parsing: ENV "stg" is given more than once`},
		{`envalias stg {
			separator
		}`, "2 - Error during parsing: Wrong argument count or unexpected line ending after 'separator'"},
		{`envalias stg {
			separator ""
		}`, "2 - Error during parsing: separator must not be empty"},
		{`envalias stg {
			separator .
		}`, `2 - Error during parsing: separator "." may only contain letters, digits, "-" and "_"`},
		{`envalias stg {
			separator -.
		}`, `2 - Error during parsing: separator "-." may only contain letters, digits, "-" and "_"`},
		{`envalias stg {
			separator - _
		}`, "2 - Error during parsing: Wrong argument count or unexpected line ending after '_'"},
		{`envalias stg {
			separator -
			separator _
		}`, "3 - Error during parsing: separator is given more than once"},
		{`envalias stg {
			zones cluster.local
			zones example.org
		}`, "3 - Error during parsing: zones is given more than once"},
		{`envalias stg {
			domain k8s.example.com
			domain example.net
		}`, "3 - Error during parsing: domain is given more than once"},
		{`envalias stg {
			zones
		}`, "2 - Error during parsing: Wrong argument count or unexpected line ending after 'zones'"},
		{`envalias stg {
			zones cluster.local:53
		}`, `2 - Error during parsing: "cluster.local:53" is not a domain name`},
		{`envalias stg {
			domain .
		}`, "2 - Error during parsing: domain must not be the root zone"},
		{`envalias stg {
			separator -
			zones cluster.local
			sepparator _
		}`, `4 - Error during parsing: unknown option "sepparator"`},
		{`envalias stg {
			fallthrough
		}`, `2 - Error during parsing: unknown option "fallthrough"`},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		err := setup(c)
		if err == nil {
			t.Errorf("test %d: expected error %q, got none", i, tc.err)
			continue
		}
		if want := prefix + tc.err; err.Error() != want {
			t.Errorf("test %d: error\n  %q\nwant\n  %q", i, err, want)
		}
	}

	c := caddy.NewTestController("dns", "envalias stg\nenvalias prd")
	if err := setup(c); err == nil || err.Error() != "plugin/envalias: this plugin can only be used once per Server Block" {
		t.Errorf("twice in a block: got error %v", err)
	}
}

func TestOnStartup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		zones     []string // envalias'
		kube      []string // the kubernetes plugin's
		want      []string
		wantError string
	}{
		{[]string{"cluster.local."}, []string{"cluster.local."}, []string{"cluster.local."}, ""},
		// kubeadm's Corefile: a "." block; reverse zones are left out.
		{[]string{"."}, []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}, []string{"cluster.local."}, ""},
		{[]string{"cluster.local.", "stg.k8s.example.com."}, []string{"cluster.local.", "cluster.example."}, []string{"cluster.local."}, ""},
		{[]string{"example.org."}, []string{"cluster.local."}, nil, "no zone of the kubernetes plugin (cluster.local.) is within the zones of envalias (example.org.)"},
		{[]string{"svc.cluster.local."}, []string{"cluster.local."}, nil, "no zone of the kubernetes plugin (cluster.local.) is within the zones of envalias (svc.cluster.local.)"},
	}
	for i, tc := range tests {
		e := &Envalias{Zones: tc.zones}
		err := e.onStartup(kubernetes.New(tc.kube))
		if tc.wantError != "" {
			if err == nil || err.Error() != tc.wantError {
				t.Errorf("test %d: error %v, want %q", i, err, tc.wantError)
			}
			continue
		}
		if err != nil {
			t.Fatalf("test %d: unexpected error: %s", i, err)
		}
		if !slices.Equal(e.zones, tc.want) {
			t.Errorf("test %d: zones %v, want %v", i, e.zones, tc.want)
		}
		if e.services == nil {
			t.Errorf("test %d: no Service lookup", i)
		}
	}

	e := &Envalias{Zones: []string{"."}}
	if err := e.onStartup(nil); err == nil || !strings.Contains(err.Error(), "kubernetes plugin is not in this server block") {
		t.Errorf("without kubernetes: error %v", err)
	}
	if err := e.onStartup(test.ErrorHandler()); err == nil || !strings.Contains(err.Error(), "not the kubernetes plugin") {
		t.Errorf("with another plugin as kubernetes: error %v", err)
	}
}

// fakeConn has an informer index of Services; envalias must use nothing else.
type fakeConn struct {
	kubedns.Controller // nil: calling anything but SvcIndex panics
	svcs               []*object.Service
}

func (f fakeConn) SvcIndex(key string) (svcs []*object.Service) {
	for _, s := range f.svcs {
		if object.ServiceKey(s.Name, s.Namespace) == key {
			svcs = append(svcs, s)
		}
	}
	return svcs
}

func TestKubeServices(t *testing.T) {
	t.Parallel()
	k := kubernetes.New([]string{"cluster.local."})
	k.APIConn = fakeConn{svcs: []*object.Service{
		{Name: "api", Namespace: "platform"},
		{Name: "stg-db", Namespace: "platform"},
	}}
	e := newEnvalias(newKubeFake("cluster.local."))
	e.Zones = []string{"."}
	if err := e.onStartup(k); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ns string
		want     bool
	}{
		{"stg-db", "platform", true},
		{"api", "platform", true},
		{"stg-api", "platform", false},
		{"stg-db", "other", false},
	} {
		if got := e.services.serviceExists(object.ServiceKey(tc.name, tc.ns)); got != tc.want {
			t.Errorf("serviceExists(%q, %q) = %t, want %t", tc.name, tc.ns, got, tc.want)
		}
	}

	// The Service stg-db is served as itself, stg-api is an alias.
	for q, want := range map[string]string{
		"stg-db.platform.svc.cluster.local.":  "stg-db.platform.svc.cluster.local.",
		"stg-api.platform.svc.cluster.local.": "api.platform.svc.cluster.local.",
	} {
		next := e.Next.(*kubeFake)
		req := new(dns.Msg)
		req.SetQuestion(q, dns.TypeA)
		e.ServeDNS(context.TODO(), dnstest.NewRecorder(&test.ResponseWriter{}), req)
		if got := next.req.Question[0].Name; got != want {
			t.Errorf("%s: kubernetes was asked for %q, want %q", q, got, want)
		}
	}
}

// TestReadmeExamples parses the envalias stanza of every Corefile in
// README.md and connects it to the block's kubernetes zones.
func TestReadmeExamples(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)~~~ corefile\n(.*?)~~~").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d Corefiles in README.md", len(blocks))
	}
	for _, b := range blocks {
		lines := strings.Split(b[1], "\n")
		keys := strings.Fields(strings.TrimSuffix(lines[0], "{"))
		var stanza []string
		var kube []string
		for i, l := range lines {
			f := strings.Fields(l)
			switch {
			case len(f) > 0 && f[0] == "envalias":
				stanza = []string{l}
				for j := i + 1; strings.HasSuffix(l, "{") && j < len(lines); j++ {
					stanza = append(stanza, lines[j])
					if strings.TrimSpace(lines[j]) == "}" {
						break
					}
				}
			case len(f) > 1 && f[0] == "kubernetes":
				for _, z := range f[1:] {
					if z != "{" {
						kube = append(kube, dns.Fqdn(z))
					}
				}
			}
		}
		c := caddy.NewTestController("dns", strings.Join(stanza, "\n"))
		c.ServerBlockKeys = keys
		e, err := parse(c)
		if err != nil {
			t.Fatalf("README Corefile %v: %s", keys, err)
		}
		if err := e.onStartup(kubernetes.New(kube)); err != nil {
			t.Errorf("README Corefile %v: %s", keys, err)
		}
	}
}
