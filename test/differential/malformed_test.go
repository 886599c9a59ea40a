package differential

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// malformedPackets are raw requests a server must survive, answering (or
// not) exactly as upstream does.
func malformedPackets(t *testing.T) map[string][]byte {
	t.Helper()
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	query := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Id = 0x4242
		return m
	}
	valid := pack(query("api.platform.svc.cluster.local.", dns.TypeA))

	packets := map[string][]byte{
		"empty":                    {},
		"short header":             valid[:7],
		"header only, qdcount 1":   valid[:12],
		"label runs past the end":  append(append([]byte{}, valid[:12]...), 0x3f, 'a', 'b'),
		"compression pointer loop": append(append([]byte{}, valid[:12]...), 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01),
		"pointer forward":          append(append([]byte{}, valid[:12]...), 0xc0, 0x20, 0x00, 0x01, 0x00, 0x01),
		"garbage":                  bytes.Repeat([]byte{0xff}, 64),
		"trailing garbage":         append(append([]byte{}, valid...), 0xde, 0xad, 0xbe, 0xef),
	}
	withCounts := func(qd, an uint16) []byte {
		b := append([]byte{}, valid...)
		binary.BigEndian.PutUint16(b[4:], qd)
		binary.BigEndian.PutUint16(b[6:], an)
		return b
	}
	packets["qdcount 0"] = withCounts(0, 0)[:12]
	packets["qdcount 2, one question"] = withCounts(2, 0)
	packets["ancount 1, no answer"] = withCounts(1, 1)

	two := query("api.platform.svc.cluster.local.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "db.platform.svc.cluster.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	packets["two questions"] = pack(two)

	response := query("api.platform.svc.cluster.local.", dns.TypeA)
	response.Response = true
	packets["a response, not a query"] = pack(response)

	for name, opcode := range map[string]int{"IQUERY": dns.OpcodeIQuery, "STATUS": dns.OpcodeStatus, "NOTIFY": dns.OpcodeNotify, "UPDATE": dns.OpcodeUpdate, "opcode 15": 15} {
		m := query("cluster.local.", dns.TypeSOA)
		m.Opcode = opcode
		packets["opcode "+name] = pack(m)
	}
	for name, class := range map[string]uint16{"ANY": dns.ClassANY, "NONE": dns.ClassNONE, "CHAOS": dns.ClassCHAOS, "HESIOD": dns.ClassHESIOD} {
		m := query("api.platform.svc.cluster.local.", dns.TypeA)
		m.Question[0].Qclass = class
		packets["class "+name] = pack(m)
	}
	ednsVersion := query("api.platform.svc.cluster.local.", dns.TypeA)
	ednsVersion.SetEdns0(1232, false)
	ednsVersion.IsEdns0().SetVersion(1)
	packets["EDNS version 1"] = pack(ednsVersion)

	twoOPT := query("api.platform.svc.cluster.local.", dns.TypeA)
	twoOPT.SetEdns0(1232, false)
	twoOPT.Extra = append(twoOPT.Extra, twoOPT.Extra[0])
	packets["two OPT records"] = pack(twoOPT)

	tiny := query("db.platform.svc.cluster.local.", dns.TypeSRV)
	tiny.SetEdns0(1, false) // below 512: treated as 512
	packets["EDNS buffer 1"] = pack(tiny)

	for _, name := range []string{
		strings.Repeat("a", 63) + ".platform.svc.cluster.local.",
		strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("e", 37) + ".svc.cluster.local.",
		`a\.b.platform.svc.cluster.local.`,
		`api\000.platform.svc.cluster.local.`,
		"AbC.PlAtFoRm.SvC.ClUsTeR.LoCaL.",
		"svc.cluster.local.",
		"*.platform.svc.cluster.local.",
		"_http._tcp.*.platform.svc.cluster.local.",
	} {
		m := query(name, dns.TypeA)
		b, err := m.Pack()
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		packets["name "+name] = b
	}
	return packets
}

// TestMalformedPacketsAnsweredAsUpstream sends every malformed packet over
// UDP and TCP to upstream and to ours (stock Corefile, and Corefile.example's
// VPC listener), requires ours to answer exactly as upstream on the same
// Corefile, and requires every server to be alive afterwards.
func TestMalformedPacketsAnsweredAsUpstream(t *testing.T) {
	w := setUp(t)
	upstream := w.startCoreDNS(t, w.upstreamBin, "")
	ours := w.startCoreDNS(t, w.OurBin, "")
	example := w.startExample(t)

	for name, packet := range malformedPackets(t) {
		for _, network := range []string{"udp", "tcp"} {
			want := exchangeRaw(t, network, upstream.addr, packet)
			t.Logf("%-40s %s: upstream %s", name, network, summary(want))
			if got := exchangeRaw(t, network, ours.addr, packet); got != want {
				t.Errorf("%s over %s:\nupstream: %s\nours:     %s", name, network, want, got)
			}
			exchangeRaw(t, network, example.vpc, packet)
			exchangeRaw(t, network, example.addr, packet)
		}
	}
	for _, s := range []server{upstream, ours, {name: "Corefile.example VPC", addr: example.vpc}, example} {
		if _, err := ask("udp", s.addr, query{name: "api.platform.svc.cluster.local.", qtype: dns.TypeA}); err != nil {
			t.Errorf("%s does not answer after the malformed packets: %v", s.name, err)
		}
	}
}

// exchangeRaw sends packet and describes the reply: "no reply", or the
// reply normalized as in compare (ID and SOA serial zeroed), or its bytes
// after the ID when it does not parse.
func exchangeRaw(t *testing.T, network, addr string, packet []byte) string {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(300 * time.Millisecond)) // loopback: a reply takes well under a millisecond
	if network == "tcp" {
		framed := binary.BigEndian.AppendUint16(nil, uint16(len(packet)))
		packet = append(framed, packet...)
	}
	if _, err := conn.Write(packet); err != nil {
		return "write failed: " + err.Error()
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil || n == 0 {
		return "no reply"
	}
	reply := buf[:n]
	if network == "tcp" {
		if len(reply) < 2 {
			return "short TCP frame"
		}
		reply = reply[2:]
	}
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		if len(reply) > 2 {
			return "unparsable " + hex.EncodeToString(reply[2:])
		}
		return "unparsable " + hex.EncodeToString(reply)
	}
	return normalize(m)
}

// summary is the first line of a normalized reply (opcode, status) or the
// whole description when there was none.
func summary(reply string) string {
	first, _, _ := strings.Cut(reply, "\n")
	return first
}
