// Command warpdns-image is `make image`: it writes a multi-platform OCI image
// of our coredns (bin/warpdns-image.tar) without a container daemon or
// network. One image per static ./cmd/coredns binary given with -binary
// (make image cross-compiles linux/amd64 and linux/arm64), each with no base
// image: the binary at /coredns, /etc/passwd and /etc/group for the non-root
// user 65532, and the host's CA bundle. The entrypoint is /coredns, as in the
// upstream CoreDNS image, so it replaces the kube-dns image with the
// cluster's existing args. An OCI image index ties the platforms together,
// with a CycloneDX SBOM of each binary attached as an attestation manifest.
//
// The tarball is an OCI image layout (make image also unpacks it into
// bin/warpdns-image/): `crane push bin/warpdns-image REGISTRY/warpdns:TAG`
// or `skopeo copy --all oci-archive:bin/warpdns-image.tar
// docker://REGISTRY/warpdns:TAG` push it (README, docs/deploy.md).
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

func main() {
	var o options
	var out, tag string
	flag.Func("binary", "static linux coredns binary, one per platform (repeat the flag)", func(s string) error {
		o.binaries = append(o.binaries, s)
		return nil
	})
	flag.StringVar(&out, "out", "bin/warpdns-image.tar", "where to write the OCI image layout tarball")
	flag.StringVar(&tag, "tag", "registry.example.com/warpdns:0.1.0", "the image name the tarball carries (docker load tags it so)")
	flag.StringVar(&o.caCerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to include (\"\" for none)")
	flag.StringVar(&o.version, "version", "dev", "version label")
	flag.StringVar(&o.revision, "revision", "", "source revision label")
	flag.StringVar(&o.source, "source", "https://github.com/warpdns/warpdns", "source repository label")
	flag.Parse()
	if len(o.binaries) == 0 {
		o.binaries = []string{"bin/coredns"}
	}

	// SOURCE_DATE_EPOCH, if set, fixes the creation time (reproducible
	// builds); otherwise the image is dated to the first binary's build.
	o.created = time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fail(fmt.Errorf("SOURCE_DATE_EPOCH: %w", err))
		}
		o.created = time.Unix(sec, 0).UTC()
	} else if fi, err := os.Stat(o.binaries[0]); err == nil {
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
	idx, err := buildIndex(o)
	if err != nil {
		fail(err)
	}
	if err := writeOCIArchive(out, ref, idx, o.created); err != nil {
		fail(err)
	}
	digest, _ := idx.Digest()
	manifest, _ := idx.IndexManifest()
	fmt.Printf("wrote %s: %s, OCI image index %s\n", out, ref, digest)
	for _, m := range manifest.Manifests {
		what := "image " + m.Platform.String()
		if d := m.Annotations[referenceDigestAnnot]; d != "" {
			what = "CycloneDX SBOM of " + d
		}
		fmt.Printf("  %s  %s\n", m.Digest, what)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "image:", err)
	os.Exit(1)
}
