package bench

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// The random-case query file: every line the same question in a spelling of its own, the same
// file every time.
func TestQueryFileSpellings(t *testing.T) {
	t.Parallel()
	sd := randomCase(Side{Name: apiName, Type: dns.TypeA})
	file := sd.queryFile()
	lines := strings.Split(strings.TrimSuffix(file, "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		if !strings.EqualFold(l, "api.platform.svc.cluster.local A") {
			t.Fatalf("line %q asks another question", l)
		}
		seen[l] = true
	}
	if len(lines) != caseSpellings || len(seen) < caseSpellings*99/100 {
		t.Errorf("%d lines, %d spellings, want %d of each (or nearly)", len(lines), len(seen), caseSpellings)
	}
	if sd.queryFile() != file {
		t.Error("the spellings differ from one run to the next")
	}
	if got := (&Side{Name: apiName, Type: dns.TypeA}).queryFile(); got != "api.platform.svc.cluster.local A\n" {
		t.Errorf("one question: %q", got)
	}
}
