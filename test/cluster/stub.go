package cluster

import (
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// StubUpstream is the "internet" behind forward: an authoritative server on
// loopback (UDP and TCP, one port) that knows records (in zone file syntax)
// and answers NXDOMAIN for every other name, so that nothing (the loop
// plugin's probe included) leaves the machine. An SOA among records is the
// authority of negative answers. stop shuts it down.
func StubUpstream(records ...string) (addr string, stop func(), err error) {
	byName := map[string][]dns.RR{}
	var soa dns.RR
	for _, text := range records {
		rr, err := dns.NewRR(text)
		if err != nil {
			return "", nil, fmt.Errorf("stub record %q: %w", text, err)
		}
		if rr.Header().Rrtype == dns.TypeSOA {
			soa = rr
			continue
		}
		key := strings.ToLower(rr.Header().Name)
		byName[key] = append(byName[key], rr)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		q := r.Question[0]
		known := byName[strings.ToLower(q.Name)]
		for _, rr := range known {
			if t := rr.Header().Rrtype; t == q.Qtype || t == dns.TypeCNAME {
				rr = dns.Copy(rr)
				rr.Header().Name = q.Name
				m.Answer = append(m.Answer, rr)
			}
		}
		if len(known) == 0 {
			m.Rcode = dns.RcodeNameError
		}
		if len(m.Answer) == 0 && soa != nil {
			m.Ns = []dns.RR{soa}
		}
		_ = w.WriteMsg(m)
	})
	pc, ln, err := listenUDPAndTCP()
	if err != nil {
		return "", nil, err
	}
	udp := &dns.Server{PacketConn: pc, Handler: handler}
	tcp := &dns.Server{Listener: ln, Handler: handler}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	return pc.LocalAddr().String(), func() { _ = udp.Shutdown(); _ = tcp.Shutdown() }, nil
}

// listenUDPAndTCP opens a UDP and a TCP socket on the same free loopback
// port; a port free for UDP may be taken for TCP, so it tries a few.
func listenUDPAndTCP() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("no loopback port free for both UDP and TCP: %w", lastErr)
}
