package ldf

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/warpdns/warpdns/test/cluster"
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
