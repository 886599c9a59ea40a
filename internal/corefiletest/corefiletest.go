// Package corefiletest writes a plugin's stanza into a Corefile and reads it back, for tests that
// check a parser by a round trip: what a stanza parses to, written out again, must parse to the
// same configuration.
package corefiletest

import (
	"fmt"
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
)

// Controller returns the controller setup gets for the stanza `directive args... { lines }` in a
// server block with keys, as caddy reads it from a Corefile.
func Controller(keys []string, directive string, args []string, lines [][]string) (*caddy.Controller, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s {\n    %s", strings.Join(keys, " "), tokens(append([]string{directive}, args...)))
	if len(lines) > 0 {
		b.WriteString(" {\n")
		for _, l := range lines {
			fmt.Fprintf(&b, "        %s\n", tokens(l))
		}
		b.WriteString("    }")
	}
	b.WriteString("\n}\n")
	blocks, err := caddyfile.Parse("Corefile", strings.NewReader(b.String()), nil)
	if err != nil {
		return nil, fmt.Errorf("%w, reading\n%s", err, b.String())
	}
	if len(blocks) != 1 {
		return nil, fmt.Errorf("%d server blocks in\n%s", len(blocks), b.String())
	}
	c := caddy.NewTestController("dns", "")
	c.Dispenser = caddyfile.NewDispenserTokens("Corefile", blocks[0].Tokens[directive])
	c.ServerBlockKeys = keys
	return c, nil
}

// tokens writes each of ts as one token: in quotes if it is empty or holds what would end a
// token or start a comment (caddyfile's lexer), with the quotes in it escaped, as the lexer reads
// them.
func tokens(ts []string) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t
		if t == "" || strings.ContainsAny(t, "\" \t\r\n#") {
			out[i] = `"` + strings.ReplaceAll(t, `"`, `\"`) + `"`
		}
	}
	return strings.Join(out, " ")
}
