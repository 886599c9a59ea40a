package integration

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestStartupRefusesWhatCannotWork: a headlessonly stanza that could never select a query (a port
// no key of the block listens on, a zone outside the kubernetes plugin's) stops our coredns at
// startup with the plugin and the line, instead of leaving VPC clients with ClusterIPs.
func TestStartupRefusesWhatCannotWork(t *testing.T) {
	e := setUp(t)
	for _, tc := range []struct {
		name, old, new string
		want           *regexp.Regexp
	}{
		{"a port no listener uses", "        ports 5353\n", "        ports 5353\n        ports 5533\n",
			regexp.MustCompile(`plugin/headlessonly: \S*Corefile:\d+ - Error during parsing: port 5533 is not a port of this server block`)},
		{"a zone outside the kubernetes plugin's", "headlessonly cluster.local {", "headlessonly example.org {",
			regexp.MustCompile(`plugin/headlessonly: \S*Corefile:\d+ - zone example.org. is not within the zones of the kubernetes plugin`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(e.Example, tc.old) {
				t.Fatalf("Corefile.Example has no %q", tc.old)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := e.RunExample(ctx, strings.Replace(e.Example, tc.old, tc.new, 1))
			if err == nil {
				c.Stop()
				t.Fatal("started")
			}
			if !tc.want.MatchString(err.Error()) {
				t.Errorf("startup error\n%s\nwant it to match %s", err, tc.want)
			}
		})
	}
}
