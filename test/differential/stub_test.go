package differential

import (
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// stubUpstream is the "internet" behind forward: a small authoritative server
// on loopback, so that upstream names, CNAME chasing and reverse fallthrough
// are part of the comparison without any traffic leaving the machine.
func stubUpstream(t *testing.T) string {
	t.Helper()
	records := map[string][]string{}
	for _, rr := range []string{
		"example.org. 300 IN A 192.0.2.1",
		"example.org. 300 IN AAAA 2001:db8::1",
		"example.org. 300 IN MX 10 mail.example.org.",
		"example.org. 300 IN TXT \"v=spf1 -all\"",
		"mail.example.org. 300 IN A 192.0.2.25",
		"www.example.org. 300 IN CNAME example.org.",
		"docs.example.org. 300 IN A 192.0.2.80",
		"1.2.0.192.in-addr.arpa. 300 IN PTR example.org.",
	} {
		parsed, err := dns.NewRR(rr)
		if err != nil {
			t.Fatal(err)
		}
		key := strings.ToLower(parsed.Header().Name)
		records[key] = append(records[key], rr)
	}
	soa, _ := dns.NewRR("example.org. 300 IN SOA ns.example.org. host.example.org. 1 7200 3600 1209600 300")

	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		found := false
		for _, text := range records[name] {
			rr, _ := dns.NewRR(text)
			rr.Header().Name = q.Name
			found = true
			if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
				m.Answer = append(m.Answer, rr)
			}
		}
		if !found {
			m.Rcode = dns.RcodeNameError
		}
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{soa}
		}
		_ = w.WriteMsg(m)
	})

	pc, ln := listenUDPAndTCP(t)
	udp := &dns.Server{PacketConn: pc, Handler: handler}
	tcp := &dns.Server{Listener: ln, Handler: handler}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return pc.LocalAddr().String()
}

// listenUDPAndTCP opens a UDP and a TCP socket on the same free loopback
// port; a port free for UDP may be taken for TCP, so it tries a few.
func listenUDPAndTCP(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		lastErr = err
	}
	t.Fatalf("no loopback port free for both UDP and TCP: %v", lastErr)
	return nil, nil
}
