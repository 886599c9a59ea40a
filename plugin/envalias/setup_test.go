package envalias

import (
	"context"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
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
	local := []string{"cluster.local."}
	for _, tc := range []struct {
		input string
		want  *Envalias
	}{
		{"envalias stg", &Envalias{Zones: local, aliaser: aliaser{envs: []string{"stg"}, sep: "-"}}},
		{"envalias STG prd", &Envalias{Zones: local, aliaser: aliaser{envs: []string{"stg", "prd"}, sep: "-"}}},
		{"envalias stg stg-eu dev", &Envalias{Zones: local, aliaser: aliaser{envs: []string{"stg-eu", "stg", "dev"}, sep: "-"}}},
		{"envalias stg {\n separator --\n}", &Envalias{Zones: local, aliaser: aliaser{envs: []string{"stg"}, sep: "--"}}},
		{"envalias stg {\n separator _\n zones Cluster.Local example.org.\n domain k8s.example.com k8s.example.net.\n}", &Envalias{
			Zones:   []string{"cluster.local.", "example.org."},
			aliaser: aliaser{envs: []string{"stg"}, sep: "_", domains: []string{"k8s.example.com.", "k8s.example.net."}},
		}},
	} {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = []string{"cluster.local:53"}
		if err := setup(c); err != nil {
			t.Fatalf("%q: unexpected error: %s", tc.input, err)
		}
		plugins := dnsserver.GetConfig(c).Plugin
		if len(plugins) != 1 {
			t.Fatalf("%q: %d plugins added, want 1", tc.input, len(plugins))
		}
		if e := plugins[0](nil); !reflect.DeepEqual(e, tc.want) {
			t.Errorf("%q: parsed\n  %+v\nwant\n  %+v", tc.input, e, tc.want)
		}
	}
}

func TestSetupErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		input, err string
	}{
		{"envalias", "1 - Error during parsing: at least one ENV is required"},
		{"envalias {\n separator -\n}", "1 - Error during parsing: at least one ENV is required"},
		{"envalias stg_x", `1 - Error during parsing: ENV "stg_x" is not a valid DNS label`},
		{"envalias -stg", `1 - Error during parsing: ENV "-stg" is not a valid DNS label`},
		{"envalias stg.eu", `1 - Error during parsing: ENV "stg.eu" is not a valid DNS label`},
		{"envalias stg prd STG", `1 - Error during parsing: ENV "stg" is given more than once`},
		{"envalias stg {\n separator\n}", "2 - Error during parsing: Wrong argument count or unexpected line ending after 'separator'"},
		{"envalias stg {\n separator \"\"\n}", "2 - Error during parsing: separator must not be empty"},
		{"envalias stg {\n separator .\n}", `2 - Error during parsing: separator "." may only contain letters, digits, "-" and "_"`},
		{"envalias stg {\n separator -.\n}", `2 - Error during parsing: separator "-." may only contain letters, digits, "-" and "_"`},
		{"envalias stg {\n separator - _\n}", "2 - Error during parsing: Wrong argument count or unexpected line ending after '_'"},
		{"envalias stg {\n separator -\n separator _\n}", "3 - Error during parsing: separator is given more than once"},
		{"envalias stg {\n zones cluster.local\n zones example.org\n}", "3 - Error during parsing: zones is given more than once"},
		{"envalias stg {\n domain k8s.example.com\n domain example.net\n}", "3 - Error during parsing: domain is given more than once"},
		{"envalias stg {\n zones\n}", "2 - Error during parsing: Wrong argument count or unexpected line ending after 'zones'"},
		{"envalias stg {\n zones cluster.local:53\n}", `2 - Error during parsing: "cluster.local:53" is not a domain name`},
		{"envalias stg {\n domain .\n}", "2 - Error during parsing: domain must not be the root zone"},
		{"envalias stg {\n separator -\n zones cluster.local\n sepparator _\n}", `4 - Error during parsing: unknown option "sepparator"`},
		{"envalias stg {\n fallthrough\n}", `2 - Error during parsing: unknown option "fallthrough"`},
	} {
		err := setup(caddy.NewTestController("dns", tc.input))
		if want := "plugin/envalias: Testfile:" + tc.err; err == nil || err.Error() != want {
			t.Errorf("%q: error\n  %v\nwant\n  %q", tc.input, err, want)
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
		e.ServeDNS(context.TODO(), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion(q, dns.TypeA))
		if got := e.Next.(*kubeFake).req.Question[0].Name; got != want {
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
		sbs, err := caddyfile.Parse("README.md", strings.NewReader(b[1]), nil)
		if err != nil || len(sbs) != 1 {
			t.Fatalf("README Corefile %q: %d server blocks, %v", b[1], len(sbs), err)
		}
		keys := sbs[0].Keys
		kube := caddyfile.NewDispenserTokens("README.md", sbs[0].Tokens["kubernetes"])
		kube.Next()
		zones := kube.RemainingArgs()
		for i := range zones {
			zones[i] = dns.Fqdn(zones[i])
		}
		c := caddy.NewTestController("dns", "")
		c.Dispenser = caddyfile.NewDispenserTokens("README.md", sbs[0].Tokens["envalias"])
		c.ServerBlockKeys = keys
		e, err := parse(c)
		if err != nil {
			t.Fatalf("README Corefile %v: %s", keys, err)
		}
		if err := e.onStartup(kubernetes.New(zones)); err != nil {
			t.Errorf("README Corefile %v: %s", keys, err)
		}
	}
}
