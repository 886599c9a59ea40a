package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/warpdns/warpdns/test/cluster"
)

// startStandin plays the parts of a cluster that the test needs besides its
// control plane and CoreDNS, from this process with sockets inside the
// cluster's namespace (cluster.InNetns, cluster.NetnsDialContext):
//
//   - the pods behind Service api: an HTTP server on each pod IP:podPort
//     whose body says which pod of which cluster answered;
//   - the kube-dns-nlb load balancer: UDP and TCP from its static IP:53 to
//     CoreDNS' VPC-facing listener (container port 5353), as the internal
//     NLB forwards them. There is no NAT in these namespaces, so this relay
//     does it in user space; queries reach CoreDNS from the relay's address.
//
// Every listener is open when it returns.
func (w *world) startStandin(c *clusterEnv) error {
	var pods []net.Listener
	var lbTCP net.Listener
	var lbUDP net.PacketConn
	err := cluster.InNetns(c.ns, func() (err error) {
		for _, ip := range c.pods {
			l, err := net.Listen("tcp", hostport(ip, podPort))
			if err != nil {
				return err
			}
			w.t.Cleanup(func() { l.Close() })
			pods = append(pods, l)
		}
		if lbTCP, err = net.Listen("tcp", hostport(c.lb, 53)); err != nil {
			return err
		}
		w.t.Cleanup(func() { lbTCP.Close() })
		if lbUDP, err = net.ListenPacket("udp", hostport(c.lb, 53)); err != nil {
			return err
		}
		w.t.Cleanup(func() { lbUDP.Close() })
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s stand-in: %w", c.env, err)
	}
	for _, l := range pods {
		go servePod(l, c.env)
	}
	nsDial := cluster.NetnsDialContext(c.ns)
	dial := func(network string) (net.Conn, error) { // to CoreDNS' VPC listener
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return nsDial(ctx, network, hostport(c.coreDNS, 5353))
	}
	go relayUDP(lbUDP, dial)
	go relayTCP(lbTCP, dial)
	return nil
}

type dialFunc func(network string) (net.Conn, error)

// servePod answers every request with the pod IP and the cluster.
func servePod(l net.Listener, env string) {
	ip, _, _ := net.SplitHostPort(l.Addr().String())
	body := fmt.Sprintf("hello from pod %s of Service api in cluster %s\n", ip, env)
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, body)
		}),
	}
	srv.Serve(l)
}

// relayUDP forwards each datagram to the backend on a socket of its own and sends
// the reply, if one comes within the timeout, back from the front address.
// No reply (the backend is down) means no reply, as with a load balancer
// whose target does not answer.
func relayUDP(pc net.PacketConn, dial dialFunc) {
	buf := make([]byte, 65535)
	for {
		n, client, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		query := append([]byte(nil), buf[:n]...)
		go func() {
			up, err := dial("udp")
			if err != nil {
				return
			}
			defer up.Close()
			_ = up.SetDeadline(time.Now().Add(5 * time.Second))
			reply := make([]byte, 65535)
			if _, err := up.Write(query); err != nil {
				return
			}
			if n, err := up.Read(reply); err == nil {
				pc.WriteTo(reply[:n], client)
			}
		}()
	}
}

// relayTCP copies each connection both ways to the backend.
func relayTCP(l net.Listener, dial dialFunc) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			up, err := dial("tcp")
			if err != nil {
				return
			}
			defer up.Close()
			var wg sync.WaitGroup
			for _, p := range [][2]net.Conn{{up, conn}, {conn, up}} {
				wg.Go(func() {
					io.Copy(p[0], p[1])
					if tc, ok := p[0].(*net.TCPConn); ok {
						_ = tc.CloseWrite()
					}
				})
			}
			wg.Wait()
		}()
	}
}
