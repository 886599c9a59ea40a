package cluster

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRenderLocalBind(t *testing.T) {
	in := ".:53 cluster.local:5353 {\n    health {\n    }\n    ready\n    headlessonly cluster.local {\n        ports 5353\n    }\n" +
		"    kubernetes cluster.local {\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf\n}\n"
	l := LocalCorefile{InClusterPort: 1053, VPCPort: 1054, HealthPort: 1, ReadyPort: 2, MetricsPort: 3, Kubeconfig: "kc"}
	out, err := RenderLocal(in, l)
	if err != nil || !strings.Contains(out, ".:1053 cluster.local:1054 {\n    bind 127.0.0.1\n") {
		t.Fatalf("default bind: %v\n%s", err, out)
	}
	l.Bind = []string{"10.201.0.53", "127.0.0.1"}
	out, err = RenderLocal(in, l)
	if err != nil || !strings.Contains(out, "    bind 10.201.0.53 127.0.0.1\n") || !strings.Contains(out, "ready 127.0.0.1:2") {
		t.Fatalf("bind %v: %v\n%s", l.Bind, err, out)
	}
}

// TestNetnsDial listens inside a namespace of its own and connects there
// with NetnsDialContext, while the same address in the test's own namespace
// has no listener. It needs root and ip netns.
func TestNetnsDial(t *testing.T) {
	ns := NetnsForTest(t, "unit")
	ports, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	var l net.Listener
	if err := InNetns(ns, func() (err error) { l, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("inside\n"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := NetnsDialContext(ns)(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial inside %s: %v", ns, err)
	}
	buf := make([]byte, 16)
	n, _ := c.Read(buf)
	c.Close()
	if string(buf[:n]) != "inside\n" {
		t.Fatalf("read %q", buf[:n])
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s answered in the test's own namespace too", addr)
	}
}
