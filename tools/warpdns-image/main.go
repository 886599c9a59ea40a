// Command image is `make image`: it writes an OCI image of our coredns as a
// tarball (bin/warpdns-image.tar) without a container daemon or network: no
// base image, just a static ./cmd/coredns binary, /etc/passwd and /etc/group
// for the non-root user 65532, and the host's CA bundle. The entrypoint is
// /coredns, as in the upstream CoreDNS image, so it replaces the kube-dns
// image with the cluster's existing args.
//
// Load and push it with `docker load -i bin/warpdns-image.tar` (or any tool
// that takes a `docker save` tarball, such as crane push), then tag it with
// your registry's path (docs/deploy.md).
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	var o options
	var out, tag string
	flag.StringVar(&o.binary, "binary", "bin/coredns", "static linux coredns binary (make build)")
	flag.StringVar(&out, "out", "bin/warpdns-image.tar", "where to write the image tarball")
	flag.StringVar(&tag, "tag", "registry.example.com/warpdns:0.1.0", "the image name the tarball carries (docker load tags it so)")
	flag.StringVar(&o.caCerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to include (\"\" for none)")
	flag.StringVar(&o.version, "version", "dev", "version label")
	flag.StringVar(&o.revision, "revision", "", "source revision label")
	flag.Parse()

	// SOURCE_DATE_EPOCH, if set, fixes the creation time (reproducible
	// builds); otherwise the image is dated to the binary's build.
	o.created = time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fail(fmt.Errorf("SOURCE_DATE_EPOCH: %w", err))
		}
		o.created = time.Unix(sec, 0).UTC()
	} else if fi, err := os.Stat(o.binary); err == nil {
		o.created = fi.ModTime().UTC().Truncate(time.Second)
	}
	if o.caCerts != "" {
		if _, err := os.Stat(o.caCerts); err != nil {
			fmt.Fprintf(os.Stderr, "image: no CA bundle at %s; building without one (forward to tls:// upstreams will fail)\n", o.caCerts)
			o.caCerts = ""
		}
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		fail(err)
	}
	img, err := buildImage(o)
	if err != nil {
		fail(err)
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		fail(err)
	}
	digest, _ := img.Digest()
	cf, _ := img.ConfigFile()
	fmt.Printf("wrote %s: %s (%s/%s, user %s, entrypoint %v), image %s\n", out, ref, cf.OS, cf.Architecture, cf.Config.User, cf.Config.Entrypoint, digest)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "image:", err)
	os.Exit(1)
}
