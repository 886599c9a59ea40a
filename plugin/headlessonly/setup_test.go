package headlessonly

import (
	"bytes"
	"fmt"
	golog "log"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/miekg/dns"
)

// TestSetup reads stanzas through setup: the options of the handler it adds, or an error that names
// the plugin and contains err.
func TestSetup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		input      string
		keys       []string // server block keys; nil: "."
		zones      []string
		namespaces []string
		fallback   bool
		ports      []uint16
		clients    []string
		err        string
	}{
		{input: `headlessonly`, keys: []string{".:53", ".:5353"}, zones: []string{"."}},
		{input: `headlessonly`, keys: []string{"cluster.local:5353"}, zones: []string{"cluster.local."}},
		{input: `headlessonly cluster.local example.org`, zones: []string{"cluster.local.", "example.org."}},
		{input: "headlessonly {\n namespaces default platform\n namespaces kube-system\n}", zones: []string{"."}, namespaces: []string{"default", "kube-system", "platform"}},
		{input: "headlessonly {\n fallback clusterip\n}", zones: []string{"."}, fallback: true},
		{input: "headlessonly {\n ports 5353 53\n ports 8053\n}", keys: []string{".:53", "dns://.:5353", ".:8053"}, zones: []string{"."}, ports: []uint16{5353, 53, 8053}},
		{input: "headlessonly {\n ports 53 853\n}", keys: []string{".", "tls://."}, zones: []string{"."}, ports: []uint16{53, 853}},
		// Client addresses arrive unmapped; every configured network must be comparable with them.
		{input: `headlessonly {
			clients 10.0.0.0/8 10.1.2.3/8 fd00::/8
			clients 192.0.2.7 2001:db8::1 ::ffff:192.0.2.8
			clients ::ffff:10.0.0.0/104 ::ffff:0.0.0.0/96
			clients 10.0.0.1 ::ffff:10.0.0.1 10.200.0.0/8 2001:db8::/32 2001:db8::1:2/120
		}`, zones: []string{"."}, clients: []string{
			"10.0.0.0/8", "10.0.0.0/8", "fd00::/8", "192.0.2.7/32", "2001:db8::1/128", "192.0.2.8/32", "10.0.0.0/8", "0.0.0.0/0",
			"10.0.0.1/32", "10.0.0.1/32", "10.0.0.0/8", "2001:db8::/32", "2001:db8::1:0/120",
		}},
		{input: `headlessonly cluster.local {
			namespaces platform
			fallback clusterip
			ports 5353
			clients 10.0.0.0/16
		}`, keys: []string{"cluster.local:5353"}, zones: []string{"cluster.local."}, namespaces: []string{"platform"}, fallback: true, ports: []uint16{5353}, clients: []string{"10.0.0.0/16"}},
		{input: "headlessonly {\n  sepparator .\n}", err: `Testfile:2 - Error during parsing: unknown option "sepparator"`},
		{input: "headlessonly {\n  namespaces\n}", err: "Testfile:2 - Error during parsing: Wrong argument count"},
		{input: "headlessonly {\n  namespaces Default\n}", err: `Testfile:2 - Error during parsing: invalid namespace "Default"`},
		{input: "headlessonly {\n  fallback\n}", err: `Testfile:2 - Error during parsing: fallback takes exactly one argument, "clusterip", got ""`},
		{input: "headlessonly {\n  fallback nxdomain\n}", err: `fallback takes exactly one argument, "clusterip", got "nxdomain"`},
		{input: "headlessonly {\n  fallback clusterip clusterip\n}", err: `got "clusterip clusterip"`},
		{input: "headlessonly {\n\n  ports\n}", err: "Testfile:3 - Error during parsing: Wrong argument count"},
		{input: "headlessonly {\n  ports 0\n}", err: `Testfile:2 - Error during parsing: invalid port "0": want a number from 1 to 65535`},
		{input: "headlessonly {\n  ports 65536\n}", err: `invalid port "65536"`},
		{input: "headlessonly {\n  ports dns\n}", err: `invalid port "dns"`},
		{input: "headlessonly {\n  clients\n}", err: "Wrong argument count"},
		{input: "headlessonly {\n  clients 10.0.0.0/33\n}", err: `Testfile:2 - Error during parsing: invalid client network "10.0.0.0/33"`},
		{input: "headlessonly {\n  clients vpc\n}", err: `invalid client network "vpc"`},
		{input: "headlessonly {\n  clients ::ffff:0.0.0.0/95\n}", err: `invalid client network "::ffff:0.0.0.0/95"`},
		{input: "headlessonly ...", err: `Testfile:1 - Error during parsing: invalid zone "..."`},
		{input: "headlessonly cluster.local {\n  ports 5353 5533\n}", keys: []string{"cluster.local:5353"}, err: `Testfile:2 - Error during parsing: port 5533 is not a port of this server block (5353)`},
		{input: "headlessonly {\n  clients fe80::1%eth0\n}", err: `invalid client network "fe80::1%eth0"`},
		{input: "headlessonly\nheadlessonly", err: "this plugin can only be used once per Server Block"},
	}
	for _, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = tc.keys
		if c.ServerBlockKeys == nil {
			c.ServerBlockKeys = []string{"."}
		}
		err := setup(c)
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), "plugin/headlessonly: ") || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want it to name the plugin and contain %q", tc.input, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: unexpected error: %v", tc.input, err)
			continue
		}
		h := dnsserver.GetConfig(c).Plugin[0](nil).(*HeadlessOnly)
		var clients []string
		for _, p := range h.clients {
			clients = append(clients, p.String())
		}
		got := []any{h.Zones, slices.Sorted(maps.Keys(h.namespaces)), h.fallback, h.ports, clients}
		if want := []any{tc.zones, tc.namespaces, tc.fallback, tc.ports, tc.clients}; !reflect.DeepEqual(got, want) {
			t.Errorf("%q: zones, namespaces, fallback, ports, clients\n  %v\nwant\n  %v", tc.input, got, want)
		}
	}
}

// TestStartup starts real servers: the kubernetes plugin must be found, and its absence reported.
func TestStartup(t *testing.T) {
	// This test binary has upstream's directive list; place us as our plugin.cfg does.
	directives := dnsserver.Directives
	t.Cleanup(func() { dnsserver.Directives = directives })
	dnsserver.Directives = slices.Insert(slices.Clone(directives), slices.Index(directives, "kubernetes"), pluginName)
	caddy.Quiet, dnsserver.Quiet = true, true

	start := func(corefile string) (*caddy.Instance, error) {
		return caddy.Start(caddy.CaddyfileInput{Contents: []byte(corefile), ServerTypeName: "dns"})
	}

	if i, err := start("cluster.local:0 {\n headlessonly\n}"); err == nil {
		i.Stop()
		t.Error("started without the kubernetes plugin")
	} else if !strings.Contains(err.Error(), "plugin/headlessonly: the kubernetes plugin is not in this server block") {
		t.Errorf("error %q does not say the kubernetes plugin is missing", err)
	}

	// No API server: the kubernetes plugin gives up waiting after startup_timeout, and answers
	// SERVFAIL until synced. The request counter shows the query went our way.
	i, err := start(`cluster.local:0 {
		headlessonly
		kubernetes {
			endpoint http://127.0.0.1:1
			startup_timeout 200ms
		}
	}`)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer i.Stop()

	requests := requestCount.WithLabelValues("dns://:0", "A")
	before := value(requests)
	m := new(dns.Msg).SetQuestion("web.testns.svc.cluster.local.", dns.TypeA)
	r, err := dns.Exchange(m, i.Servers()[0].LocalAddr().String())
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL from an unsynced kubernetes plugin", dns.RcodeToString[r.Rcode])
	}
	if got := value(requests) - before; got != 1 {
		t.Errorf("%v queries served headless-style, want 1", got)
	}
}

// A zone outside the kubernetes plugin's zones would never be answered headless-style: startup
// fails, naming the plugin and the line.
func TestStartupZones(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		input string
		keys  []string
		want  string // error; empty: none
	}{
		{"headlessonly", []string{"cluster.local:5353"}, ""},
		{"headlessonly", []string{".:53"}, ""}, // the kubeadm block: it acts in cluster.local
		{"headlessonly cluster.local", []string{"."}, ""},
		{"headlessonly svc.cluster.local", []string{"."}, ""},
		{"headlessonly example.org", []string{"."}, "Testfile:1 - zone example.org. is not within the zones of the kubernetes plugin (cluster.local. in-addr.arpa. ip6.arpa.)"},
		{"headlessonly", []string{"example.org"}, "Testfile:1 - zone example.org. is not within the zones of the kubernetes plugin (cluster.local. in-addr.arpa. ip6.arpa.)"},
	} {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = tc.keys
		h, err := parse(c)
		if err != nil {
			t.Fatalf("%q: %v", tc.input, err)
		}
		err = h.onStartup(newKubernetes(newCluster(false)))
		if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("%q in %v: error %v, want %q", tc.input, tc.keys, err, tc.want)
		}
	}
}

// A namespace that does not exist once the cache has synced is most likely a typo: it is logged.
func TestWarnNamespaces(t *testing.T) {
	var buf bytes.Buffer
	golog.SetOutput(&buf)
	t.Cleanup(func() { golog.SetOutput(os.Stderr) })

	c := caddy.NewTestController("dns", "headlessonly {\n  namespaces testns tetsns\n}")
	c.ServerBlockKeys = []string{"cluster.local"}
	h, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	h.warnNamespaces(newCluster(false))
	got := buf.String()
	if want := `[WARNING] plugin/headlessonly: Testfile:2 - namespace "tetsns" does not exist`; !strings.Contains(got, want) {
		t.Errorf("log %q, want it to contain %q", got, want)
	}
	if strings.Contains(got, `"testns"`) {
		t.Errorf("log %q warns of a namespace that exists", got)
	}
}
