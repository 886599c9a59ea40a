package headlessonly

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/kubernetes"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		input      string
		keys       []string // server block keys
		zones      []string
		namespaces []string
		fallback   bool
		ports      []uint16
		clients    []string
	}{
		{input: `headlessonly`, keys: []string{".:53", ".:5353"}, zones: []string{"."}},
		{input: `headlessonly`, keys: []string{"cluster.local:5353"}, zones: []string{"cluster.local."}},
		{input: `headlessonly cluster.local example.org`, keys: []string{"."}, zones: []string{"cluster.local.", "example.org."}},
		{input: `headlessonly {
			namespaces default platform
			namespaces kube-system
		}`, zones: []string{"."}, namespaces: []string{"default", "kube-system", "platform"}},
		{input: `headlessonly {
			fallback clusterip
		}`, zones: []string{"."}, fallback: true},
		{input: `headlessonly {
			ports 5353 53
			ports 8053
		}`, zones: []string{"."}, ports: []uint16{5353, 53, 8053}},
		{input: `headlessonly {
			clients 10.0.0.0/8 10.1.2.3/8 fd00::/8
			clients 192.0.2.7 2001:db8::1 ::ffff:192.0.2.8
		}`, zones: []string{"."}, clients: []string{"10.0.0.0/8", "10.0.0.0/8", "fd00::/8", "192.0.2.7/32", "2001:db8::1/128", "192.0.2.8/32"}},
		{input: `headlessonly cluster.local {
			namespaces platform
			fallback clusterip
			ports 5353
			clients 10.0.0.0/16
		}`, zones: []string{"cluster.local."}, namespaces: []string{"platform"}, fallback: true, ports: []uint16{5353}, clients: []string{"10.0.0.0/16"}},
	}
	for _, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = tc.keys
		if c.ServerBlockKeys == nil {
			c.ServerBlockKeys = []string{"."}
		}
		h, err := parse(c)
		if err != nil {
			t.Errorf("%q: unexpected error: %v", tc.input, err)
			continue
		}
		if !reflect.DeepEqual(h.Zones, tc.zones) {
			t.Errorf("%q: zones %v, want %v", tc.input, h.Zones, tc.zones)
		}
		var namespaces []string
		for ns := range h.namespaces {
			namespaces = append(namespaces, ns)
		}
		if !sameStrings(namespaces, tc.namespaces) {
			t.Errorf("%q: namespaces %v, want %v", tc.input, namespaces, tc.namespaces)
		}
		if h.fallback != tc.fallback {
			t.Errorf("%q: fallback %t, want %t", tc.input, h.fallback, tc.fallback)
		}
		if !reflect.DeepEqual(h.ports, tc.ports) {
			t.Errorf("%q: ports %v, want %v", tc.input, h.ports, tc.ports)
		}
		var clients []string
		for _, p := range h.clients {
			clients = append(clients, p.String())
		}
		if !reflect.DeepEqual(clients, tc.clients) {
			t.Errorf("%q: clients %v, want %v", tc.input, clients, tc.clients)
		}
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]bool{}
	for _, s := range a {
		seen[s] = true
	}
	for _, s := range b {
		if !seen[s] {
			return false
		}
	}
	return true
}

func TestSetupErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		input string
		want  string
	}{
		{"headlessonly {\n  sepparator .\n}", `Testfile:2 - Error during parsing: unknown option "sepparator"`},
		{"headlessonly {\n  namespaces\n}", "Testfile:2 - Error during parsing: Wrong argument count"},
		{"headlessonly {\n  namespaces Default\n}", `Testfile:2 - Error during parsing: invalid namespace "Default"`},
		{"headlessonly {\n  fallback\n}", `Testfile:2 - Error during parsing: fallback takes exactly one argument, "clusterip", got ""`},
		{"headlessonly {\n  fallback nxdomain\n}", `fallback takes exactly one argument, "clusterip", got "nxdomain"`},
		{"headlessonly {\n  fallback clusterip clusterip\n}", `got "clusterip clusterip"`},
		{"headlessonly {\n\n  ports\n}", "Testfile:3 - Error during parsing: Wrong argument count"},
		{"headlessonly {\n  ports 0\n}", `Testfile:2 - Error during parsing: invalid port "0": want a number from 1 to 65535`},
		{"headlessonly {\n  ports 65536\n}", `invalid port "65536"`},
		{"headlessonly {\n  ports dns\n}", `invalid port "dns"`},
		{"headlessonly {\n  clients\n}", "Wrong argument count"},
		{"headlessonly {\n  clients 10.0.0.0/33\n}", `Testfile:2 - Error during parsing: invalid client network "10.0.0.0/33"`},
		{"headlessonly {\n  clients vpc\n}", `invalid client network "vpc"`},
		{"headlessonly {\n  clients ::ffff:10.0.0.0/104\n}", `invalid client network "::ffff:10.0.0.0/104"`},
		{"headlessonly {\n  clients fe80::1%eth0\n}", `invalid client network "fe80::1%eth0"`},
		{"headlessonly\nheadlessonly", "this plugin can only be used once per Server Block"},
	}
	for _, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		err := setup(c)
		if err == nil {
			t.Errorf("%q: expected an error", tc.input)
			continue
		}
		if !strings.HasPrefix(err.Error(), "plugin/headlessonly: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %q, want it to name the plugin and contain %q", tc.input, err, tc.want)
		}
	}
}

func TestKubernetesPlugin(t *testing.T) {
	t.Parallel()
	if _, err := kubernetesPlugin(nil); err == nil || !strings.Contains(err.Error(), "kubernetes plugin is not loaded") {
		t.Errorf("missing kubernetes plugin: error %v", err)
	}
	if _, err := kubernetesPlugin(test.ErrorHandler()); err == nil {
		t.Error("a handler that is not the kubernetes plugin was accepted")
	}
	k := kubernetes.New([]string{"cluster.local."})
	if got, err := kubernetesPlugin(k); err != nil || got != k {
		t.Errorf("kubernetes plugin: got %v, %v", got, err)
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
	} else if !strings.Contains(err.Error(), "plugin/headlessonly: the kubernetes plugin is not loaded") {
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
	m := new(dns.Msg)
	m.SetQuestion("web.testns.svc.cluster.local.", dns.TypeA)
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

func TestParsePrefix(t *testing.T) {
	t.Parallel()
	// Client addresses arrive unmapped; every configured network must be comparable with them.
	for in, want := range map[string]string{
		"10.0.0.1":          "10.0.0.1/32",
		"::ffff:10.0.0.1":   "10.0.0.1/32",
		"10.0.0.0/8":        "10.0.0.0/8",
		"10.200.0.0/8":      "10.0.0.0/8",
		"2001:db8::/32":     "2001:db8::/32",
		"2001:db8::1:2/120": "2001:db8::1:0/120",
	} {
		p, err := parsePrefix(in)
		if err != nil || p != netip.MustParsePrefix(want) {
			t.Errorf("parsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
}
