package cluster

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestStubUpstream: known names answer over UDP and TCP, a known name
// without the asked type answers NODATA with the SOA, others NXDOMAIN.
func TestStubUpstream(t *testing.T) {
	addr, stop, err := StubUpstream(
		"example.org. 300 IN SOA ns.example.org. host.example.org. 1 7200 3600 1209600 300",
		"example.org. 300 IN A 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, c := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer int
		ns     int
	}{
		{"example.org.", dns.TypeA, dns.RcodeSuccess, 1, 0},
		{"EXAMPLE.org.", dns.TypeA, dns.RcodeSuccess, 1, 0},
		{"example.org.", dns.TypeMX, dns.RcodeSuccess, 0, 1},
		{"nowhere.example.", dns.TypeA, dns.RcodeNameError, 0, 1},
	} {
		for _, network := range []string{"udp", "tcp"} {
			m := new(dns.Msg)
			m.SetQuestion(c.name, c.qtype)
			r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, addr)
			if err != nil {
				t.Fatalf("%s %s over %s: %v", c.name, dns.TypeToString[c.qtype], network, err)
			}
			if r.Rcode != c.rcode || len(r.Answer) != c.answer || len(r.Ns) != c.ns {
				t.Errorf("%s %s over %s: %s, %d answers, %d authority; want %s, %d, %d", c.name, dns.TypeToString[c.qtype], network,
					dns.RcodeToString[r.Rcode], len(r.Answer), len(r.Ns), dns.RcodeToString[c.rcode], c.answer, c.ns)
			}
		}
	}
}
