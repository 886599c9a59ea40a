package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Network namespaces, for tests that give clusters, resolvers and clients
// namespaces of their own (`ip netns add NAME`), such as test/e2e. The test
// process stays in its own namespace and reaches into the others with
// InNetns and NetnsDialContext. Linux only, and it takes CAP_SYS_ADMIN.

// netnsPath is where `ip netns add NAME` pins the namespace.
func netnsPath(name string) string { return filepath.Join("/run/netns", name) }

// InNetns runs fn on an OS thread that has joined network namespace name (as
// `ip netns` names it; "" runs fn as it is). Sockets that fn opens on its own
// goroutine belong to that namespace, and stay there after fn returns;
// goroutines that fn starts run elsewhere, and so does name resolution, so
// give fn IP literals. A miekg/dns Exchange with an IP:port qualifies.
func InNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	target, err := os.Open(netnsPath(name))
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer target.Close()
	done := make(chan error, 1)
	go func() {
		// No UnlockOSThread unless the thread is back in its own
		// namespace: a goroutine that ends locked takes its thread
		// with it, so no other goroutine ever runs in the wrong one.
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer own.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("joining network namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		done <- ferr
	}()
	return <-done
}

// NetnsDialContext returns a DialContext (for http.Transport, rest.Config's
// Dial, ...) whose connections are opened inside network namespace name. The
// address must be an IP literal with a port.
func NetnsDialContext(name string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if name == "" {
		return d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := InNetns(name, func() (err error) {
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// netnsLoopbackClient is insecureLoopbackClient for the loopback of network
// namespace name.
func netnsLoopbackClient(name string) *http.Client {
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DialContext:     NetnsDialContext(name),
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // #nosec G402 -- loopback, self-signed
		},
	}
}
