package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's contract, shared with the Dockerfile (a test keeps them equal)
// and with the upstream CoreDNS image it replaces: the binary at /coredns as
// the entrypoint, so kubeadm's `args: ["-conf", "/etc/coredns/Corefile"]`
// (and every other CoreDNS Deployment's) work unchanged.
const (
	uid        = 65532 // "nonroot", as in distroless images
	binaryPath = "coredns"
)

var (
	entrypoint   = []string{"/coredns"}
	cmd          = []string{"-conf", "/etc/coredns/Corefile"}
	exposedPorts = []string{"53/udp", "53/tcp", "5353/udp", "5353/tcp", "8080/tcp", "8181/tcp", "9153/tcp"}
)

// options say what to put in the images.
type options struct {
	binaries []string  // static linux binaries of ./cmd/coredns, one per platform
	caCerts  string    // a CA bundle to include, for forward/tls upstreams ("" for none)
	version  string    // image version label
	revision string    // source revision label
	source   string    // source repository label
	created  time.Time // image creation time (fixed, for reproducible images)
}

// buildImage assembles the image of one binary: no base (nothing but what
// is listed here), one layer with /coredns, /etc/passwd and /etc/group
// naming the non-root user, and optionally the CA bundle. OCI media types
// throughout, as an OCI image index requires of its manifests.
func buildImage(o options, binary string) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	arch, err := staticLinuxArch(binary)
	if err != nil {
		return nil, err
	}
	files := []file{
		{name: "etc/", dir: true},
		{name: "etc/passwd", data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, uid))},
		{name: "etc/group", data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid))},
		{name: binaryPath, data: bin, mode: 0o755},
	}
	if o.caCerts != "" {
		ca, err := os.ReadFile(o.caCerts)
		if err != nil {
			return nil, err
		}
		files = append(files, file{name: "etc/ssl/", dir: true}, file{name: "etc/ssl/certs/", dir: true},
			file{name: "etc/ssl/certs/ca-certificates.crt", data: ca})
	}
	layerTar, err := tarFiles(files, o.created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(ociEmptyImage(), layer)
	if err != nil {
		return nil, err
	}
	return withConfig(img, func(cf *v1.ConfigFile) {
		configure(cf, o, arch)
	})
}

// configure is the config of an image of o's binary for arch.
func configure(cf *v1.ConfigFile, o options, arch string) {
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: o.created}
	cf.Config.User = fmt.Sprintf("%d:%d", uid, uid)
	cf.Config.Entrypoint = entrypoint
	cf.Config.Cmd = cmd
	cf.Config.WorkingDir = "/"
	cf.Config.ExposedPorts = map[string]struct{}{}
	for _, p := range exposedPorts {
		cf.Config.ExposedPorts[p] = struct{}{}
	}
	// The pre-defined keys of the OCI image spec:
	// https://github.com/opencontainers/image-spec/blob/main/annotations.md#pre-defined-annotation-keys
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "warpdns",
		"org.opencontainers.image.description": "CoreDNS v1.15.0 with envalias and headlessonly: Kubernetes Service names over Cloudflare WARP",
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.revision":    o.revision,
		"org.opencontainers.image.source":      o.source,
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
	cf.History = []v1.History{{Created: v1.Time{Time: o.created}, CreatedBy: "make image (tools/warpdns-image): /coredns, /etc/passwd, /etc/group", Comment: "no base image"}}
}

// withConfig is img with its config file changed by edit.
func withConfig(img v1.Image, edit func(*v1.ConfigFile)) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	edit(cf)
	return mutate.ConfigFile(img, cf)
}

// ociEmptyImage is an image with no layers and OCI media types (empty.Image
// has Docker's).
func ociEmptyImage() v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
}

type file struct {
	name string
	data []byte
	dir  bool
	mode int64
}

// tarFiles writes a tar (a layer, the image archive) sorted by name, with
// fixed owners (root) and times, so that the same input gives the same bytes.
func tarFiles(files []file, mtime time.Time) ([]byte, error) {
	sort.SliceStable(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatPAX,
			Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data))}
		if f.dir {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		if f.mode != 0 {
			h.Mode = f.mode
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var goarch = map[elf.Machine]string{
	elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_386: "386", elf.EM_ARM: "arm",
	elf.EM_PPC64: "ppc64le", elf.EM_S390: "s390x", elf.EM_RISCV: "riscv64",
}

// staticLinuxArch returns the GOARCH of a statically linked linux ELF
// binary, and an error for anything else: with no base image there is no
// dynamic loader or libc to link against.
func staticLinuxArch(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: not a linux binary: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New(path + " is dynamically linked; build it with CGO_ENABLED=0 (make build)")
		}
	}
	if arch, ok := goarch[f.Machine]; ok {
		return arch, nil
	}
	return "", fmt.Errorf("%s: unsupported machine %v", path, f.Machine)
}
