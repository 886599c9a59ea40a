package gateway

import (
	"net/netip"
	"testing"
)

func TestWirefilter(t *testing.T) {
	dev := &Fields{Email: "dev@example.com", Groups: []string{"engineering", "developers"},
		FQDN: "stg-api.platform.svc.cluster.local", DstIP: netip.MustParseAddr("10.0.3.7"), VNetID: "v1"}
	for _, c := range []struct {
		expr string
		want bool
	}{
		{`any(identity.groups.name[*] in {"developers" "oncall"})`, true},
		{`any(identity.groups.name[*] in {"oncall"})`, false},
		{`identity.email == "dev@example.com"`, true},
		{`identity.email in {"a@example.com" "dev@example.com"}`, true},
		{`not(any(identity.groups.name[*] in {"developers"}) or identity.email in {"x@example.com"})`, false},
		{`net.vnet_id == "v1" and net.dst.ip in {10.0.0.0/16 10.0.12.53}`, true},
		{`net.vnet_id == "v2" and net.dst.ip in {10.0.0.0/16}`, false},
		{`net.dst.ip in {10.1.0.0/16} || identity.email == "dev@example.com" && net.dst.ip == 10.0.3.7`, true},
		// wirefilter keeps a backslash with the character after it: \. is
		// a literal dot for the regex.
		{`dns.fqdn matches "(^|\.)stg-[^.]+\.[^.]+\.svc\.cluster\.local$"`, true},
		{`dns.fqdn matches "^stg-api\.platformXsvc"`, false},
	} {
		e, err := Parse(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got, err := Match(e, dev); err != nil || got != c.want {
			t.Errorf("%s: %v (%v), want %v", c.expr, got, err, c.want)
		}
	}
	for _, bad := range []string{
		`identity.groups.name in {"developers"}`, // an array outside any()
		`net.dst.port == 22`,                     // not modelled
		`identity.email == "a`,                   // unterminated
		`identity.email == "a" and`,              // dangling
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%s: parsed, want an error", bad)
		}
	}
}
