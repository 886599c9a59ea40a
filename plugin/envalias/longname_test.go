package envalias

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// A name restored to the asked form can be longer than the one the next plugin wrote: ENV- adds
// len(ENV)+1 octets, and a domain longer than svc.ZONE adds the difference. A record whose
// restored name would pass 255 octets is one the client's name could never have had: it is
// dropped with its glue, and the rest of the reply stays valid.
func TestRestoreTooLong(t *testing.T) {
	t.Parallel()
	host := strings.Repeat("h", 63) // the longest endpoint hostname
	longZone := strings.Repeat("a", 62) + "." + strings.Repeat("b", 62) + "." + strings.Repeat("c", 51) + "."
	longDomain := strings.Repeat("d", 62) + "." + strings.Repeat("e", 62) + "." + strings.Repeat("f", 58) + "."

	for _, tc := range []struct {
		form, qname string // qname is asked; the next plugin answers for its alias
		e           *Envalias
	}{
		{"ENV-SVC", "_http._tcp.stg-svc.ns.svc." + longZone,
			&Envalias{aliaser: aliaser{envs: []string{"stg"}, sep: "-", zones: []string{longZone}}}},
		{"domain", "_http._tcp.svc.ns.stg." + longDomain,
			&Envalias{aliaser: aliaser{envs: []string{"stg"}, sep: "-", zones: []string{"cluster.local."}, domains: []string{longDomain}}}},
	} {
		t.Run(tc.form, func(t *testing.T) {
			t.Parallel()
			tc.e.Next = plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
				q := r.Question[0].Name
				svc := strings.TrimPrefix(q, "_http._tcp.")
				long, short := host+"."+svc, "10-0-0-1."+svc
				m := new(dns.Msg)
				m.SetReply(r)
				m.Answer = []dns.RR{
					test.SRV(q + " 5 IN SRV 0 50 8080 " + long),
					test.SRV(q + " 5 IN SRV 0 50 8080 " + short),
				}
				m.Extra = []dns.RR{test.A(long + " 5 IN A 10.0.0.2"), test.A(short + " 5 IN A 10.0.0.1")}
				return dns.RcodeSuccess, w.WriteMsg(m)
			})
			if _, ok := dns.IsDomainName(host + "." + strings.TrimPrefix(tc.qname, "_http._tcp.")); ok {
				t.Fatal("the fixture's restored target is not too long")
			}

			for _, network := range []string{"udp", "tcp"} {
				addr := serve(t, network, tc.e)
				req := new(dns.Msg)
				req.SetQuestion(tc.qname, dns.TypeSRV)
				req.SetEdns0(4096, false)
				resp, _, err := (&dns.Client{Net: network}).Exchange(req, addr)
				if err != nil {
					t.Fatalf("%s: %v", network, err)
				}
				short := "10-0-0-1." + strings.TrimPrefix(tc.qname, "_http._tcp.")
				want := test.Case{
					Qname: tc.qname, Qtype: dns.TypeSRV,
					Answer: []dns.RR{test.SRV(tc.qname + " 5 IN SRV 0 50 8080 " + short)},
					Extra:  []dns.RR{test.A(short + " 5 IN A 10.0.0.1")},
				}
				if err := test.SortAndCheck(resp, want); err != nil {
					t.Errorf("%s: %v\n%s", network, err, resp)
				}
			}
		})
	}
}

// serve starts a server on loopback that answers with h.
func serve(t *testing.T, network string, h plugin.Handler) string {
	t.Helper()
	started := make(chan struct{})
	s := &dns.Server{Addr: "127.0.0.1:0", Net: network, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { h.ServeDNS(context.Background(), w, r) })}
	go s.ListenAndServe()
	<-started
	t.Cleanup(func() { s.Shutdown() })
	if network == "tcp" {
		return s.Listener.Addr().String()
	}
	return s.PacketConn.LocalAddr().String()
}
