// Command standin plays the parts of a cluster that the end-to-end test
// (test/e2e) needs besides its control plane and CoreDNS, inside the
// cluster's network namespace:
//
//   - the pods behind a Service: an HTTP server on each pod IP:port whose
//     body says which pod of which cluster answered;
//   - the kube-dns-nlb load balancer: UDP and TCP from its static IP:53 to
//     CoreDNS' VPC-facing listener (container port 5353), as the internal
//     NLB forwards them. There is no NAT in these namespaces, so this relay
//     does it in user space; queries reach CoreDNS from the relay's address.
//
// Usage:
//
//	standin -cluster stg -pod 10.201.0.11:8080 -pod 10.201.0.12:8080 \
//	    -lb 10.201.255.53:53=10.201.0.53:5353
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var pods, lbs list
	clusterName := flag.String("cluster", "", "the cluster's name, said in every HTTP reply")
	flag.Var(&pods, "pod", "IP:PORT of a pod's HTTP server (repeatable)")
	flag.Var(&lbs, "lb", "FRONT=BACK: relay UDP and TCP DNS from FRONT (IP:PORT) to BACK (repeatable)")
	flag.Parse()
	if *clusterName == "" || len(pods)+len(lbs) == 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(log.Lmicroseconds)

	// Open every listener first, so that a failure ends the program
	// before anything answers.
	var serve []func() error
	for _, addr := range pods {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			log.Fatal(err)
		}
		serve = append(serve, podServer(l, *clusterName))
	}
	for _, spec := range lbs {
		front, back, ok := strings.Cut(spec, "=")
		if !ok {
			log.Fatalf("-lb %q: want FRONT=BACK", spec)
		}
		pc, err := net.ListenPacket("udp", front)
		if err != nil {
			log.Fatal(err)
		}
		l, err := net.Listen("tcp", front)
		if err != nil {
			log.Fatal(err)
		}
		serve = append(serve, func() error { return relayUDP(pc, back) }, func() error { return relayTCP(l, back) })
	}
	log.Printf("standin for cluster %s: pods %v, load balancers %v", *clusterName, pods, lbs)
	errs := make(chan error, len(serve))
	for _, s := range serve {
		go func() { errs <- s() }()
	}
	log.Fatal(<-errs)
}

// podServer answers every request with the pod IP and the cluster.
func podServer(l net.Listener, clusterName string) func() error {
	ip, _, _ := net.SplitHostPort(l.Addr().String())
	body := fmt.Sprintf("hello from pod %s of Service api in cluster %s\n", ip, clusterName)
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.Printf("pod %s: %s %s %s from %s", ip, r.Method, r.Host, r.URL, r.RemoteAddr)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, body)
		}),
	}
	return func() error { return srv.Serve(l) }
}

// relayUDP forwards each datagram to back on a socket of its own and sends
// the reply, if one comes within the timeout, back from the front address.
// No reply (the backend is down) means no reply, as with a load balancer
// whose target does not answer.
func relayUDP(pc net.PacketConn, back string) error {
	buf := make([]byte, 65535)
	for {
		n, client, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		query := append([]byte(nil), buf[:n]...)
		go func() {
			up, err := net.Dial("udp", back)
			if err != nil {
				log.Printf("lb udp %s: %v", back, err)
				return
			}
			defer up.Close()
			_ = up.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := up.Write(query); err != nil {
				log.Printf("lb udp %s: %v", back, err)
				return
			}
			reply := make([]byte, 65535)
			n, err := up.Read(reply)
			if err != nil {
				log.Printf("lb udp %s: no reply for %s: %v", back, client, err)
				return
			}
			if _, err := pc.WriteTo(reply[:n], client); err != nil {
				log.Printf("lb udp reply to %s: %v", client, err)
			}
		}()
	}
}

// relayTCP copies each connection both ways to back.
func relayTCP(l net.Listener, back string) error {
	for {
		conn, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			up, err := net.DialTimeout("tcp", back, 5*time.Second)
			if err != nil {
				log.Printf("lb tcp %s: %v", back, err)
				return
			}
			defer up.Close()
			var wg sync.WaitGroup
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				if _, err := io.Copy(dst, src); err != nil && !errors.Is(err, net.ErrClosed) {
					log.Printf("lb tcp: %v", err)
				}
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
			}
			go pipe(up, conn)
			go pipe(conn, up)
			wg.Wait()
		}()
	}
}
