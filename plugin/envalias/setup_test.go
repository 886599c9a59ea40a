package envalias

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/kubernetes"
	"github.com/coredns/coredns/plugin/kubernetes/object"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/warpdns/warpdns/internal/kubedns"
)

// TestSetup reads stanzas through setup: the handler it adds, or the error.
func TestSetup(t *testing.T) {
	t.Parallel()
	local := []string{"cluster.local."}
	for _, tc := range []struct {
		input string
		want  *Envalias
		err   string // after "plugin/envalias: "
	}{
		{input: "envalias stg", want: &Envalias{Zones: local, aliaser: aliaser{envs: []string{"stg"}, sep: "-"}}},
		{input: "envalias STG prd", want: &Envalias{Zones: local, aliaser: aliaser{envs: []string{"stg", "prd"}, sep: "-"}}},
		{input: "envalias stg stg-eu dev", want: &Envalias{Zones: local, aliaser: aliaser{envs: []string{"stg-eu", "stg", "dev"}, sep: "-"}}},
		{input: "envalias stg {\n separator --\n}", want: &Envalias{Zones: local, aliaser: aliaser{envs: []string{"stg"}, sep: "--"}}},
		{input: "envalias stg {\n separator _\n zones Cluster.Local example.org.\n domain k8s.example.com k8s.example.net.\n}", want: &Envalias{
			Zones:   []string{"cluster.local.", "example.org."},
			aliaser: aliaser{envs: []string{"stg"}, sep: "_", domains: []string{"k8s.example.com.", "k8s.example.net."}},
		}},
		{input: "envalias", err: "Testfile:1 - Error during parsing: at least one ENV is required"},
		{input: "envalias {\n separator -\n}", err: "Testfile:1 - Error during parsing: at least one ENV is required"},
		{input: "envalias stg_x", err: `Testfile:1 - Error during parsing: ENV "stg_x" is not a valid DNS label`},
		{input: "envalias -stg", err: `Testfile:1 - Error during parsing: ENV "-stg" is not a valid DNS label`},
		{input: "envalias stg.eu", err: `Testfile:1 - Error during parsing: ENV "stg.eu" is not a valid DNS label`},
		{input: "envalias stg prd STG", err: `Testfile:1 - Error during parsing: ENV "stg" is given more than once`},
		{input: "envalias stg {\n separator\n}", err: "Testfile:2 - Error during parsing: Wrong argument count or unexpected line ending after 'separator'"},
		{input: "envalias stg {\n separator \"\"\n}", err: "Testfile:2 - Error during parsing: separator must not be empty"},
		{input: "envalias stg {\n separator .\n}", err: `Testfile:2 - Error during parsing: separator "." may only contain letters, digits, "-" and "_"`},
		{input: "envalias stg {\n separator -.\n}", err: `Testfile:2 - Error during parsing: separator "-." may only contain letters, digits, "-" and "_"`},
		{input: "envalias stg {\n separator - _\n}", err: "Testfile:2 - Error during parsing: Wrong argument count or unexpected line ending after '_'"},
		{input: "envalias stg {\n separator -\n separator _\n}", err: "Testfile:3 - Error during parsing: separator is given more than once"},
		{input: "envalias stg {\n zones cluster.local\n zones example.org\n}", err: "Testfile:3 - Error during parsing: zones is given more than once"},
		{input: "envalias stg {\n domain k8s.example.com\n domain example.net\n}", err: "Testfile:3 - Error during parsing: domain is given more than once"},
		{input: "envalias stg {\n zones\n}", err: "Testfile:2 - Error during parsing: Wrong argument count or unexpected line ending after 'zones'"},
		{input: "envalias stg {\n zones cluster.local:53\n}", err: `Testfile:2 - Error during parsing: "cluster.local:53" is not a domain name`},
		{input: "envalias stg {\n domain .\n}", err: "Testfile:2 - Error during parsing: domain must not be the root zone"},
		{input: "envalias stg {\n separator -\n zones cluster.local\n sepparator _\n}", err: `Testfile:4 - Error during parsing: unknown option "sepparator"`},
		{input: "envalias stg {\n fallthrough\n}", err: `Testfile:2 - Error during parsing: unknown option "fallthrough"`},
		{input: "envalias stg\nenvalias prd", err: "this plugin can only be used once per Server Block"},
	} {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = []string{"cluster.local:53"}
		err := setup(c)
		if tc.err != "" {
			if want := "plugin/envalias: " + tc.err; fmt.Sprint(err) != want {
				t.Errorf("%q: error\n  %v\nwant\n  %q", tc.input, err, want)
			}
			continue
		}
		if err != nil {
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

func TestOnStartup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zones []string       // envalias'
		kube  plugin.Handler // the handler the server block has as "kubernetes"
		want  []string
		err   string // empty: none
	}{
		{[]string{"cluster.local."}, kubernetes.New([]string{"cluster.local."}), []string{"cluster.local."}, ""},
		// kubeadm's Corefile: a "." block; reverse zones are left out.
		{[]string{"."}, kubernetes.New([]string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."}), []string{"cluster.local."}, ""},
		{[]string{"cluster.local.", "stg.k8s.example.com."}, kubernetes.New([]string{"cluster.local.", "cluster.example."}), []string{"cluster.local."}, ""},
		{[]string{"example.org."}, kubernetes.New([]string{"cluster.local."}), nil, "no zone of the kubernetes plugin (cluster.local.) is within the zones of envalias (example.org.)"},
		{[]string{"svc.cluster.local."}, kubernetes.New([]string{"cluster.local."}), nil, "no zone of the kubernetes plugin (cluster.local.) is within the zones of envalias (svc.cluster.local.)"},
		{[]string{"."}, nil, nil, "the kubernetes plugin is not in this server block"},
		{[]string{"."}, test.ErrorHandler(), nil, `the handler named "handlerfunc" is a test.HandlerFunc, not the kubernetes plugin`},
	} {
		e := &Envalias{Zones: tc.zones}
		if err := e.onStartup(tc.kube); fmt.Sprint(err) != cmp.Or(tc.err, "<nil>") {
			t.Errorf("%v with %T: error %v, want %q", tc.zones, tc.kube, err, tc.err)
		}
		if !slices.Equal(e.zones, tc.want) || (e.services != nil) != (tc.err == "") {
			t.Errorf("%v with %T: zones %v, Service lookup %t; want %v, %t", tc.zones, tc.kube, e.zones, e.services != nil, tc.want, tc.err == "")
		}
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
	for key, want := range map[string]bool{
		object.ServiceKey("stg-db", "platform"):  true,
		object.ServiceKey("api", "platform"):     true,
		object.ServiceKey("stg-api", "platform"): false,
		object.ServiceKey("stg-db", "other"):     false,
	} {
		if got := e.services.serviceExists(key); got != want {
			t.Errorf("serviceExists(%q) = %t, want %t", key, got, want)
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
		zones := plugin.OriginsFromArgsOrServerBlock(kube.RemainingArgs(), keys) // as the kubernetes plugin reads them
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
