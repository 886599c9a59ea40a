package ldf

import (
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"go4.org/netipx"

	"github.com/warpdns/warpdns/test/cluster"
	"github.com/warpdns/warpdns/test/e2e/tf"
)

func module(t *testing.T) string {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "manifests", "cloudflare", "modules", "device-profile")
}

// The module's list in resolver-policy mode keeps every default entry but
// `local`, so cluster names reach Gateway; the default list keeps them on
// the device.
func TestDeviceProfile(t *testing.T) {
	p, err := Evaluate(module(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Managed {
		t.Fatal("the module does not manage the fallback list in resolver-policy mode")
	}
	if !slices.Contains(p.Default, "local") || len(p.Default) < 10 {
		t.Fatalf("Cloudflare's default list from the module: %v", p.Default)
	}
	want := slices.DeleteFunc(slices.Clone(p.Default), func(s string) bool { return s == "local" })
	if got := p.Suffixes(); !slices.Equal(got, want) {
		t.Errorf("fallback list %v, want the default without local %v", got, want)
	}
	name := "stg-api.platform.svc.cluster.local."
	if d, ok := p.Match(name); ok {
		t.Errorf("%s stays on the device (entry %q) with the module's list", name, d.Suffix)
	}
	if d, ok := p.DefaultProfile().Match(name); !ok || d.Suffix != "local" {
		t.Errorf("%s with Cloudflare's default list: match %q %v, want local", name, d.Suffix, ok)
	}
	if _, ok := p.Match("printer.lan"); !ok {
		t.Error("printer.lan should stay local (default entry lan kept)")
	}
}

// Another cluster domain drops the entries it ends in; Local Domain
// Fallback mode adds each environment's domain with its load balancer.
func TestDeviceProfileInputs(t *testing.T) {
	entry := cty.ObjectVal(map[string]cty.Value{
		"suffix": cty.StringVal("stg.k8s.example.com"), "description": cty.StringVal("stg"),
		"dns_server": cty.ListVal([]cty.Value{cty.StringVal("10.0.12.53")}),
	})
	p, err := Evaluate(module(t), map[string]cty.Value{
		"cluster_domain":        cty.StringVal("k8s.internal"),
		"local_domain_fallback": cty.ListVal([]cty.Value{entry}),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := p.Suffixes()
	if slices.Contains(got, "internal") || !slices.Contains(got, "local") {
		t.Errorf("cluster domain k8s.internal: list %v, want internal dropped and local kept", got)
	}
	d, ok := p.Match("api.platform.stg.k8s.example.com")
	if !ok || !slices.Equal(d.DNSServer, []string{"10.0.12.53"}) {
		t.Errorf("api.platform.stg.k8s.example.com: %+v %v, want the stg load balancer", d, ok)
	}
}

// clusterRanges are what the environments' split_tunnel_include outputs
// hand the module: two IPv4 VPCs inside 10.0.0.0/8 and an IPv6 one inside
// fd00::/8.
func clusterRanges() cty.Value {
	var entries []cty.Value
	for _, cidr := range []string{"10.0.0.0/16", "10.1.0.0/16", "fd00:10::/56"} {
		entries = append(entries, cty.ObjectVal(map[string]cty.Value{
			"address": cty.StringVal(cidr), "description": cty.StringVal("cluster VPC (warpdns)"),
		}))
	}
	return cty.ListVal(entries)
}

// organisation reads testdata/organisation.tfvars: the lists of an
// organisation that already runs WARP.
func organisation(t *testing.T) map[string]cty.Value {
	t.Helper()
	vars, err := tf.ReadVars(filepath.Join("testdata", "organisation.tfvars"))
	if err != nil {
		t.Fatal(err)
	}
	return vars
}

// withOrganisation evaluates the module for the cluster ranges, mode and
// the organisation's lists. An input the module lacks is a failure (the
// organisation's list cannot be given, so the profile cannot keep it); the
// module is then evaluated without it, to show what that costs.
func withOrganisation(t *testing.T, mode string, org map[string]cty.Value) *Profile {
	t.Helper()
	m, err := tf.Load(module(t))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]cty.Value{"include": clusterRanges(), "split_tunnel_mode": cty.StringVal(mode)}
	maps.Copy(vars, org)
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		if !m.Declares(name) {
			t.Errorf("the module has no input %s: the organisation's setup cannot be given to it", name)
			delete(vars, name)
		}
	}
	p, err := EvaluateModule(m, vars)
	if err != nil {
		t.Fatal(err)
	}
	if p.Split == nil {
		t.Fatal("the profile's Split Tunnels are unknown for these inputs")
	}
	return p
}

// checkSplitTunnel compares what the profile sends through WARP with what
// the organisation's list does: the same, plus the cluster ranges. Traffic
// the organisation sent to Gateway that now leaves WARP loses Gateway's
// filtering; traffic it kept out that now enters WARP is an entry lost
// (a VPN endpoint, a local network); a domain entry must stay too.
func checkSplitTunnel(t *testing.T, org, got *SplitTunnel) {
	t.Helper()
	var cluster netipx.IPSetBuilder
	for _, e := range clusterRanges().AsValueSlice() {
		cluster.AddPrefix(netip.MustParsePrefix(e.GetAttr("address").AsString()))
	}
	clusterSet, _ := cluster.IPSet()
	var want netipx.IPSetBuilder
	want.AddSet(org.Through())
	want.AddSet(clusterSet)
	wantSet, _ := want.IPSet()
	through := got.Through()

	if missing := minus(clusterSet, through).Prefixes(); len(missing) > 0 {
		t.Errorf("%s mode: cluster ranges outside WARP: %v", got.Mode, missing)
	}
	if left := minus(minus(wantSet, clusterSet), through).Prefixes(); len(left) > 0 {
		t.Errorf("%s mode: traffic outside the cluster ranges would leave WARP (and Gateway's filtering): %d prefixes, e.g. %v", got.Mode, len(left), left[:min(4, len(left))])
	}
	if lost := minus(through, wantSet).Prefixes(); len(lost) > 0 {
		t.Errorf("%s mode: the organisation's entries lost, now through WARP: %v", got.Mode, lost)
	}
	for _, h := range org.Hosts() {
		if !slices.Contains(got.Hosts(), h) {
			t.Errorf("%s mode: the organisation's domain entry %s lost (have %v)", got.Mode, h, got.Hosts())
		}
	}
}

// minus is a less b.
func minus(a, b *netipx.IPSet) *netipx.IPSet {
	var d netipx.IPSetBuilder
	d.AddSet(a)
	d.RemoveSet(b)
	s, _ := d.IPSet()
	return s
}

// The module applied to an organisation that already has entries, in
// both modes: everything it sent through WARP still goes, everything it
// kept out stays out, except the cluster ranges, which go through WARP;
// every fallback entry stays but those swallowing cluster.local.
func TestDeviceProfileKeepsOrganisation(t *testing.T) {
	org := organisation(t)
	for _, mode := range []string{Exclude, Include} {
		t.Run(mode, func(t *testing.T) {
			p := withOrganisation(t, mode, org)
			if p.Split.Mode != mode {
				t.Errorf("split_tunnel_mode %s: the profile is in %s mode", mode, p.Split.Mode)
			}
			orgList, err := NewSplitTunnel(mode, org["org_"+mode])
			if err != nil {
				t.Fatal(err)
			}
			checkSplitTunnel(t, orgList, p.Split)

			for _, d := range org["org_fallback_domains"].AsValueSlice() {
				suffix := d.GetAttr("suffix").AsString()
				got, ok := p.Match("host." + suffix)
				if suffix == "local" {
					if ok && got.Suffix == "local" {
						t.Errorf("fallback entry local kept: it keeps *.svc.cluster.local on the laptop")
					}
					continue
				}
				var servers []string
				if d.Type().HasAttribute("dns_server") {
					for _, s := range d.GetAttr("dns_server").AsValueSlice() {
						servers = append(servers, s.AsString())
					}
				}
				if !ok || got.Suffix != suffix || !slices.Equal(got.DNSServer, servers) {
					t.Errorf("the organisation's fallback entry %s %v lost (list: %v)", suffix, servers, p.Suffixes())
				}
			}
		})
	}
}

// With no organisation lists given: Exclude mode with Cloudflare's default
// exclude list (the module's local) less the cluster ranges, and the
// cluster ranges are exactly what changes.
func TestDeviceProfileDefaults(t *testing.T) {
	p, err := Evaluate(module(t), map[string]cty.Value{"include": clusterRanges()})
	if err != nil {
		t.Fatal(err)
	}
	if p.Split == nil || p.Split.Mode != Exclude {
		t.Fatalf("default Split Tunnels %+v, want Exclude mode", p.Split)
	}
	var def []cty.Value
	for _, a := range p.DefaultExclude {
		def = append(def, cty.ObjectVal(map[string]cty.Value{"address": cty.StringVal(a)}))
	}
	if len(def) < 10 {
		t.Fatalf("Cloudflare's default exclude list from the module: %v", p.DefaultExclude)
	}
	org, err := NewSplitTunnel(Exclude, cty.TupleVal(def))
	if err != nil {
		t.Fatal(err)
	}
	checkSplitTunnel(t, org, p.Split)
	for addr, want := range map[string]bool{
		"10.0.3.4": true, "10.1.255.1": true, "fd00:10::53": true, // clusters
		"198.51.100.7": true, "2001:db8::1": true, // the Internet
		"10.2.0.1": false, "192.168.1.10": false, "fd00:11::1": false, "fe80::1": false, // local networks
	} {
		if got := p.Split.Through().Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s through WARP: %v, want %v", addr, got, want)
		}
	}
	// 10.0.0.0/8 less two /16s is eight prefixes: the list stays short.
	if n := len(p.Split.Routes); n > 16+8+7+48 {
		t.Errorf("%d exclude entries", n)
	}
}
