package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/warpdns/warpdns/test/cluster"
)

// TestBrokenReloadKeepsRunningConfig: a Corefile edited into a broken
// envalias or headlessonly stanza is refused by the reload plugin with the
// plugin's error in the log, and the running configuration keeps answering.
func TestBrokenReloadKeepsRunningConfig(t *testing.T) {
	e := setUp(t)
	ns := e.namespace(t, "reload")
	e.service(t, cluster.ClusterIPService(ns, "api"), []cluster.Endpoint{{IP: "10.28.0.1"}}, nil)
	in := e.variant(t, "    reload\n", "    reload 2s 1s\n")
	alias := "stg-api." + ns + ".svc.cluster.local."
	waitAddrs(t, in.vpc, "udp", alias, dns.TypeA, "10.28.0.1")

	path := filepath.Join(in.coredns.Dir, "Corefile")
	running, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, broken := range []struct{ old, new, wantLog string }{
		{"envalias stg", "envalias stg {\n        sepparator _\n    }", `plugin/envalias: `},
		{"        ports ", "        fallback nope\n        ports ", `plugin/headlessonly: `},
	} {
		if !strings.Contains(string(running), broken.old) {
			t.Fatalf("the running Corefile has no %q", broken.old)
		}
		edited := strings.Replace(string(running), broken.old, broken.new, 1)
		if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the reload is refused and logged", func() error {
			for _, line := range strings.Split(in.coredns.Log(), "\n") {
				if strings.Contains(line, "reload failed") && strings.Contains(line, broken.wantLog) {
					t.Log(line)
					return nil
				}
			}
			return fmt.Errorf("no 'reload failed' line naming %s in the log:\n%s", broken.wantLog, in.coredns.Log())
		})
		wantAddrs(t, "after the broken "+broken.wantLog+" edit", ask(t, in.vpc, alias, dns.TypeA), "10.28.0.1")
		if err := os.WriteFile(path, running, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
