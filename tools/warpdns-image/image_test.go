package main

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/warpdns/warpdns/test/cluster"
)

// TestImage does what `make image` does, to a temporary directory, and
// inspects the tarball as a container runtime would: the tag, the config
// (user, entrypoint, command, architecture), the layer's files, and that
// the binary in it runs with no libc.
func TestImage(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "coredns")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.Version=9.9.9-test", "-o", bin, "./cmd/coredns")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./cmd/coredns: %v\n%s", err, out)
	}

	out := filepath.Join(dir, "warpdns-image.tar")
	run := exec.CommandContext(ctx, "go", "run", ".", "-binary", bin, "-out", out, "-tag", "registry.example.com/warpdns:9.9.9", "-version", "9.9.9")
	run.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
	if msg, err := run.CombinedOutput(); err != nil {
		t.Fatalf("go run ./warpdns-image: %v\n%s", err, msg)
	} else {
		t.Logf("%s", msg)
	}

	// docker load reads manifest.json for the tag.
	tag, _ := name.NewTag("registry.example.com/warpdns:9.9.9")
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("reading %s as a docker save tarball: %v", out, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
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
	if c.Labels["org.opencontainers.image.version"] != "9.9.9" || !cf.Created.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("version label %q, created %v", c.Labels["org.opencontainers.image.version"], cf.Created)
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
	files := map[string]*tar.Header{}
	extracted := filepath.Join(dir, "rootfs")
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
		if h.Typeflag == tar.TypeReg {
			p := filepath.Join(extracted, h.Name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			data, _ := io.ReadAll(tr)
			if err := os.WriteFile(p, data, os.FileMode(h.Mode)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("layer: %v", names)
	if h := files["coredns"]; h == nil || h.Mode&0o111 == 0 || h.Uid != 0 {
		t.Errorf("no executable /coredns owned by root in the layer")
	}
	passwd, _ := os.ReadFile(filepath.Join(extracted, "etc", "passwd"))
	if !strings.Contains(string(passwd), "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd lacks the nonroot user 65532:\n%s", passwd)
	}
	group, _ := os.ReadFile(filepath.Join(extracted, "etc", "group"))
	if !strings.Contains(string(group), "nonroot:x:65532:") {
		t.Errorf("/etc/group lacks group 65532")
	}

	// The binary from the layer runs on its own (static, no libc).
	version, err := exec.CommandContext(ctx, filepath.Join(extracted, "coredns"), "-version").CombinedOutput()
	if err != nil || !strings.Contains(string(version), "warpdns-9.9.9-test") || !strings.Contains(string(version), "CoreDNS-1.15.0") {
		t.Errorf("/coredns -version from the image: %v\n%s", err, version)
	}

	// The same image twice: same digest (fixed times and owners).
	again := filepath.Join(dir, "again.tar")
	run2 := exec.CommandContext(ctx, "go", "run", ".", "-binary", bin, "-out", again, "-tag", "registry.example.com/warpdns:9.9.9", "-version", "9.9.9")
	run2.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
	if msg, err := run2.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	img2, err := tarball.ImageFromPath(again, &tag)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := img2.Digest()
	if d1 != d2 {
		t.Errorf("not reproducible: %s then %s", d1, d2)
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
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	var froms []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
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
	ports := strings.Fields(got["EXPOSE"])
	sort.Strings(ports)
	want := slices.Clone(exposedPorts)
	sort.Strings(want)
	if !slices.Equal(ports, want) {
		t.Errorf("Dockerfile EXPOSE %v, make image exposes %v", ports, want)
	}
}
