// Command coredns is CoreDNS v1.15.0 with two more plugins, envalias and
// headlessonly, compiled in at the places plugin.cfg gives them. Without those
// plugins in a Corefile it answers exactly as upstream CoreDNS does.
package main

//go:generate go run directives_generate.go

import (
	"fmt"
	"os"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
)

// Version is this distribution's version; the Makefile may override it with
// -ldflags "-X main.Version=...".
var Version = "0.1.0-dev"

func main() {
	if err := dnsserver.SetDirectives(directives); err != nil {
		fmt.Fprintln(os.Stderr, "coredns: bad plugin order:", err)
		os.Exit(1)
	}
	if wantsVersion(os.Args[1:]) {
		// coremain prints upstream's "CoreDNS-1.15.0" and platform lines after
		// this one. caddy.AppVersion itself stays upstream's, so that answers
		// that carry it (the chaos plugin's version.bind) match upstream.
		fmt.Printf("warpdns-%s (envalias, headlessonly) on CoreDNS-%s\n", Version, coremain.CoreVersion)
	}
	coremain.Run()
}

// wantsVersion reports whether the command line asks for -version, as Go's
// flag package would read it.
func wantsVersion(args []string) bool {
	for _, a := range args {
		switch a {
		case "-version", "--version", "-version=true", "--version=true":
			return true
		case "--":
			return false
		}
	}
	return false
}
