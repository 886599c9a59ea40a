package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/warpdns/warpdns/test/cluster"
)

// platforms are what make image builds, with the ELF machine each binary
// must have and the qemu-user program that runs it on another CPU.
var platforms = []struct {
	arch    string
	machine elf.Machine
	qemu    string
}{
	{"amd64", elf.EM_X86_64, "qemu-x86_64"},
	{"arm64", elf.EM_AARCH64, "qemu-aarch64"},
}

// TestImage does what `make image` does, to a temporary directory, and
// inspects the tarball as a registry client and a container runtime would:
// the OCI image index with one manifest per platform and an SBOM
// attestation for each, the names in index.json, each config (user,
// entrypoint, command, platform, labels), each layer's files, that each
// binary is a static ELF for its CPU, and that it runs (under qemu-user for
// the other CPU, where installed).
func TestImage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args := []string{"run", ".", "-out", "", "-tag", "registry.example.com/warpdns:9.9.9", "-version", "9.9.9", "-revision", "0123abc"}
	for _, p := range platforms {
		bin := filepath.Join(dir, "linux-"+p.arch, "coredns")
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.Version=9.9.9-test", "-o", bin, "./cmd/coredns")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+p.arch, "GOWORK=off")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("CGO_ENABLED=0 GOARCH=%s go build ./cmd/coredns: %v\n%s", p.arch, err, out)
		}
		args = append(args, "-binary", bin)
	}

	makeImage := func(archive string) []byte {
		args[3] = archive // -out
		run := exec.CommandContext(ctx, "go", args...)
		run.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
		msg, err := run.CombinedOutput()
		if err != nil {
			t.Fatalf("go run ./warpdns-image: %v\n%s", err, msg)
		}
		t.Logf("%s", msg)
		data, _ := os.ReadFile(archive)
		return data
	}
	archive := filepath.Join(dir, "warpdns-image.tar")
	first := makeImage(archive)

	layoutDir := filepath.Join(dir, "layout")
	extract(t, bytes.NewReader(first), layoutDir)
	top, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatalf("%s is not an OCI image layout: %v", archive, err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(topManifest.Manifests) != 1 {
		t.Fatalf("index.json lists %d entries, want the one image index", len(topManifest.Manifests))
	}
	entry := topManifest.Manifests[0]
	if entry.MediaType != types.OCIImageIndex {
		t.Errorf("index.json entry is %s, want an OCI image index", entry.MediaType)
	}
	if got := entry.Annotations["io.containerd.image.name"]; got != "registry.example.com/warpdns:9.9.9" {
		t.Errorf("io.containerd.image.name %q, want the full name (docker and containerd load it so)", got)
	}
	if got := entry.Annotations["org.opencontainers.image.ref.name"]; got != "9.9.9" {
		t.Errorf("org.opencontainers.image.ref.name %q, want the tag 9.9.9", got)
	}
	idx, err := top.ImageIndex(entry.Digest)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}

	images := map[string]v1.Descriptor{} // arch -> image manifest
	attestations := map[string]v1.Hash{} // image digest -> attestation manifest
	for _, m := range manifest.Manifests {
		if m.Platform == nil {
			t.Errorf("manifest %s has no platform", m.Digest)
			continue
		}
		switch {
		case m.Annotations["vnd.docker.reference.type"] == "attestation-manifest":
			if m.Platform.OS != "unknown" || m.Platform.Architecture != "unknown" {
				t.Errorf("attestation %s has platform %s, want unknown/unknown so that no runtime runs it", m.Digest, m.Platform)
			}
			attestations[m.Annotations["vnd.docker.reference.digest"]] = m.Digest
		case m.Platform.OS == "linux":
			images[m.Platform.Architecture] = m
		default:
			t.Errorf("unexpected manifest %s for %s", m.Digest, m.Platform)
		}
	}
	for _, p := range platforms {
		desc, ok := images[p.arch]
		if !ok {
			t.Errorf("no linux/%s image in the index (have %v)", p.arch, slices.Sorted(maps.Keys(images)))
			continue
		}
		t.Run("linux/"+p.arch, func(t *testing.T) {
			img, err := idx.Image(desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			coredns := checkImage(t, img, p.arch, filepath.Join(dir, "rootfs-"+p.arch))
			checkELF(t, coredns, p.machine)
			runVersion(t, ctx, coredns, p.arch, p.qemu)

			att, ok := attestations[desc.Digest.String()]
			if !ok {
				t.Fatalf("no SBOM attestation refers to the linux/%s image %s", p.arch, desc.Digest)
			}
			attImg, err := idx.Image(att)
			if err != nil {
				t.Fatal(err)
			}
			checkSBOM(t, attImg, desc.Digest)
		})
	}

	// The same image twice: same digest (fixed times and owners).
	if !bytes.Equal(first, makeImage(filepath.Join(dir, "again.tar"))) {
		t.Errorf("not reproducible: two runs wrote different tarballs")
	}
}

// checkImage checks one platform's image and returns the path of its
// /coredns, extracted under rootfs.
func checkImage(t *testing.T, img v1.Image, arch, rootfs string) string {
	t.Helper()
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want %s", mt, types.OCIManifestSchema1)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != arch {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, arch)
	}
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root)", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/coredns"}) || !slices.Equal(c.Cmd, []string{"-conf", "/etc/coredns/Corefile"}) {
		t.Errorf("entrypoint %v cmd %v, want [/coredns] [-conf /etc/coredns/Corefile] as upstream's", c.Entrypoint, c.Cmd)
	}
	for _, p := range []string{"53/udp", "53/tcp", "5353/udp", "5353/tcp", "9153/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed", p)
		}
	}
	for label, want := range map[string]string{
		"org.opencontainers.image.version":  "9.9.9",
		"org.opencontainers.image.revision": "0123abc",
		"org.opencontainers.image.source":   "https://github.com/warpdns/warpdns",
	} {
		if got := c.Labels[label]; got != want {
			t.Errorf("label %s %q, want %q", label, got, want)
		}
	}
	if !cf.Created.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("created %v, want SOURCE_DATE_EPOCH", cf.Created)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want exactly one (no base image)", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := extract(t, rc, rootfs)
	names := slices.Sorted(maps.Keys(files))
	t.Logf("layer: %v", names)
	if h := files["coredns"]; h == nil || h.Mode&0o111 == 0 || h.Uid != 0 {
		t.Errorf("no executable /coredns owned by root in the layer")
	}
	passwd, _ := os.ReadFile(filepath.Join(rootfs, "etc", "passwd"))
	if !strings.Contains(string(passwd), "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd lacks the nonroot user 65532:\n%s", passwd)
	}
	group, _ := os.ReadFile(filepath.Join(rootfs, "etc", "group"))
	if !strings.Contains(string(group), "nonroot:x:65532:") {
		t.Errorf("/etc/group lacks group 65532")
	}
	return filepath.Join(rootfs, "coredns")
}

// checkELF: the binary is for the image's CPU and statically linked (there
// is no libc in the image).
func checkELF(t *testing.T, path string, want elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("/coredns is not an ELF binary: %v", err)
	}
	defer f.Close()
	if f.Machine != want {
		t.Errorf("/coredns is an ELF for %v, want %v", f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("/coredns is dynamically linked")
		}
	}
}

// runVersion runs /coredns -version from the image: directly on its own
// CPU, under qemu-user on another.
func runVersion(t *testing.T, ctx context.Context, coredns, arch, qemu string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, coredns, "-version")
	if arch != runtime.GOARCH {
		emulator, err := exec.LookPath(qemu)
		if err != nil {
			emulator, err = exec.LookPath(qemu + "-static")
		}
		if err != nil {
			t.Skipf("cannot run the linux/%s binary on this %s machine: %s not installed (apt-get install qemu-user)", arch, runtime.GOARCH, qemu)
		}
		cmd = exec.CommandContext(ctx, emulator, coredns, "-version")
	}
	version, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(version), "warpdns-9.9.9-test") || !strings.Contains(string(version), "CoreDNS-1.15.0") || !strings.Contains(string(version), "linux/"+arch) {
		t.Errorf("%v: %v\n%s", cmd.Args, err, version)
	}
	t.Logf("%v:\n%s", cmd.Args, version)
}

// checkSBOM: the attestation is an in-toto statement about the image
// manifest whose predicate is a CycloneDX SBOM listing the modules compiled
// into the binary.
func checkSBOM(t *testing.T, att v1.Image, image v1.Hash) {
	t.Helper()
	layers, err := att.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("attestation has %d layers (%v), want one", len(layers), err)
	}
	mt, _ := layers[0].MediaType()
	if mt != "application/vnd.in-toto+json" {
		t.Errorf("attestation layer %s, want application/vnd.in-toto+json", mt)
	}
	m, _ := att.Manifest()
	if got := m.Layers[0].Annotations["in-toto.io/predicate-type"]; got != "https://cyclonedx.org/bom" {
		t.Errorf("predicate-type annotation %q", got)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var statement struct {
		Type          string `json:"_type"`
		PredicateType string
		Subject       []struct{ Digest map[string]string }
		Predicate     cdx.BOM
	}
	if err := json.NewDecoder(rc).Decode(&statement); err != nil {
		t.Fatalf("attestation is not an in-toto statement with a CycloneDX BOM: %v", err)
	}
	if len(statement.Subject) != 1 || statement.Subject[0].Digest["sha256"] != image.Hex {
		t.Errorf("statement subject %v, want the image manifest %s", statement.Subject, image)
	}
	bom := statement.Predicate
	if bom.BOMFormat != "CycloneDX" || bom.Metadata == nil || bom.Metadata.Component == nil || bom.Components == nil {
		t.Fatalf("not a CycloneDX BOM with components: %+v", bom)
	}
	if main := bom.Metadata.Component; main.Name != "github.com/warpdns/warpdns" || main.Version != "9.9.9" {
		t.Errorf("BOM describes %s %s, want github.com/warpdns/warpdns 9.9.9", main.Name, main.Version)
	}
	if !slices.ContainsFunc(*bom.Components, func(c cdx.Component) bool {
		return c.Name == "github.com/coredns/coredns" && c.Version == "v1.15.0"
	}) {
		t.Errorf("BOM's %d components lack github.com/coredns/coredns v1.15.0", len(*bom.Components))
	}
}

// extract writes the regular files of the tar stream r below dir (with
// their modes, readable by us) and returns every entry's header by name.
func extract(t *testing.T, r io.Reader, dir string) map[string]*tar.Header {
	t.Helper()
	files := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
		if h.Typeflag != tar.TypeReg {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		data, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, data, os.FileMode(h.Mode)|0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestImageRejectsDynamicBinary: a binary linked against libc would not run
// in an image without one.
func TestImageRejectsDynamicBinary(t *testing.T) {
	for _, p := range []string{"/bin/sh", "/usr/bin/env"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if _, err := staticLinuxArch(p); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
			t.Errorf("%s: %v, want a refusal naming CGO_ENABLED=0", p, err)
		}
		return
	}
	t.Skip("no dynamically linked binary to try")
}

// TestDockerfileMatchesImage keeps the Dockerfile (for users with Docker)
// and `make image` in agreement.
func TestDockerfileMatchesImage(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var froms []string
	for _, line := range strings.Split(string(dockerfile), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			froms = append(froms, rest)
		case "USER", "ENTRYPOINT", "CMD", "EXPOSE":
			got[strings.ToUpper(instr)] = rest
		}
	}
	if len(froms) < 2 || froms[len(froms)-1] != "scratch" {
		t.Errorf("Dockerfile: want a multi-stage build ending FROM scratch, got %v", froms)
	}
	jsonList := func(s string) []string {
		var l []string
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Errorf("Dockerfile: %q is not an exec-form list: %v", s, err)
		}
		return l
	}
	if got["USER"] != "65532:65532" {
		t.Errorf("Dockerfile USER %q, make image uses 65532:65532", got["USER"])
	}
	if l := jsonList(got["ENTRYPOINT"]); !slices.Equal(l, entrypoint) {
		t.Errorf("Dockerfile ENTRYPOINT %v, make image uses %v", l, entrypoint)
	}
	if l := jsonList(got["CMD"]); !slices.Equal(l, cmd) {
		t.Errorf("Dockerfile CMD %v, make image uses %v", l, cmd)
	}
	ports := slices.Sorted(slices.Values(strings.Fields(got["EXPOSE"])))
	if want := slices.Sorted(slices.Values(exposedPorts)); !slices.Equal(ports, want) {
		t.Errorf("Dockerfile EXPOSE %v, make image exposes %v", ports, want)
	}
}
