package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Pinned versions of everything the harness builds from the Go module proxy.
const (
	EtcdVersion       = "v3.7.3"
	KubernetesVersion = "v1.37.2"
	UpstreamCoreDNS   = "v1.15.0"
	// K8sGatewayVersion is the maintained fork of k8s_gateway
	// (github.com/k8s-gateway/k8s_gateway; the ori-edge repository it came
	// from stops at v0.4.0) at commit bd2cc78, 19 commits after tag v1.8.2:
	// the `k8s-gateway.dns/resolve-endpoints: "true"` annotation (README.md,
	// "Endpoint Resolution"; kubernetes.go resolveEndpointsAnnotationKey)
	// came after v1.8.2, whose kubernetes.go has no such annotation.
	K8sGatewayVersion = "v1.8.3-0.20260809054418-bd2cc78320a2"
	k8sGatewayModule  = "github.com/k8s-gateway/k8s_gateway"
)

// Logf receives one line per step of slow work, so that a first run that
// builds the control plane for minutes is never silent.
type Logf func(format string, args ...any)

// CacheDir is where built binaries are kept between runs: $WARPDNS_CACHE,
// else $XDG_CACHE_HOME/warpdns, else ~/.cache/warpdns.
func CacheDir() (string, error) {
	if dir := os.Getenv("WARPDNS_CACHE"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "warpdns"), nil
}

// Binaries are the control-plane programs a Cluster runs.
type Binaries struct {
	Etcd      string
	APIServer string
}

// EnsureBinaries returns etcd and kube-apiserver, building them from their Go
// modules at the pinned versions the first time (about five minutes on two
// cores) and reusing the cached builds afterwards.
func EnsureBinaries(ctx context.Context, logf Logf) (Binaries, error) {
	etcd, err := ensureBuilt(ctx, logf, "etcd-"+EtcdVersion, buildEtcd)
	if err != nil {
		return Binaries{}, err
	}
	apiserver, err := ensureBuilt(ctx, logf, "kube-apiserver-"+KubernetesVersion, buildAPIServer)
	if err != nil {
		return Binaries{}, err
	}
	return Binaries{Etcd: etcd, APIServer: apiserver}, nil
}

// releaseEnv and releaseFlags are how both coredns binaries are built:
// upstream's release flags (coredns/coredns Makefile: CGO_ENABLED?=0 and
// -ldflags="-s -w") plus -trimpath, the flags `make build` gives ours.
var (
	releaseEnv   = "CGO_ENABLED=0"
	releaseFlags = []string{"-trimpath", "-ldflags=-s -w"}
)

// UpstreamCoreDNSBinary returns upstream CoreDNS, built the first time with
// `go install github.com/coredns/coredns@v1.15.0` the way upstream's release
// build does it (coredns/coredns Makefile: CGO_ENABLED?=0 and
// -ldflags="-s -w") plus -trimpath, exactly the flags `make build` gives
// ours: the reference our binary must answer like, and whose speed it is
// measured against, differing from ours only in the code compiled in.
func UpstreamCoreDNSBinary(ctx context.Context, logf Logf) (string, error) {
	return ensureBuilt(ctx, logf, "coredns-"+UpstreamCoreDNS+"-release", func(ctx context.Context, logf Logf, src, out string) error {
		logf("upstream CoreDNS %s (the reference our binary must answer like): CGO_ENABLED=0 go install -trimpath -ldflags='-s -w', 1 to 5 minutes on 2 cores (the longer with an empty Go cache)", UpstreamCoreDNS)
		gobin := filepath.Join(src, "bin")
		args := append(append([]string{"install"}, releaseFlags...), "github.com/coredns/coredns@"+UpstreamCoreDNS)
		if err := goCommand(ctx, logf, src, []string{"GOBIN=" + gobin, releaseEnv}, args...); err != nil {
			return err
		}
		return os.Rename(filepath.Join(gobin, "coredns"), out)
	})
}

// K8sGatewayBinary returns CoreDNS with the k8s_gateway plugin (the
// project's own cmd, from its own go.mod), built the first time from the Go
// module proxy or, where the proxy does not serve that module, from a
// checkout of its repository at K8sGatewayVersion named by
// $WARPDNS_K8S_GATEWAY_SRC, with its dependencies from the proxy. It returns
// "" and why when neither works: the bench then reports that instead of the
// row.
func K8sGatewayBinary(ctx context.Context, logf Logf) (bin, whyNot string) {
	bin, err := ensureBuilt(ctx, logf, "coredns-k8s_gateway-"+K8sGatewayVersion, func(ctx context.Context, logf Logf, src, out string) error {
		gobin := filepath.Join(src, "bin")
		proxyErr := goCommand(ctx, logf, src, []string{"GOBIN=" + gobin}, "install", k8sGatewayModule+"/cmd@"+K8sGatewayVersion)
		if proxyErr == nil {
			return os.Rename(filepath.Join(gobin, "cmd"), out)
		}
		checkout := os.Getenv("WARPDNS_K8S_GATEWAY_SRC")
		if checkout == "" {
			return fmt.Errorf("go install %s/cmd@%s failed (%w), and $WARPDNS_K8S_GATEWAY_SRC names no checkout of it", k8sGatewayModule, K8sGatewayVersion, firstLine(proxyErr))
		}
		goMod, err := os.ReadFile(filepath.Join(checkout, "go.mod"))
		if err != nil || !strings.HasPrefix(string(goMod), "module "+k8sGatewayModule+"\n") {
			return fmt.Errorf("$WARPDNS_K8S_GATEWAY_SRC=%s is not a checkout of %s (%v)", checkout, k8sGatewayModule, err)
		}
		logf("building k8s_gateway from %s with its own go.mod (the module proxy does not serve it)", checkout)
		abs, err := filepath.Abs(out)
		if err != nil {
			return err
		}
		return goCommand(ctx, logf, checkout, nil, "build", "-o", abs, "./cmd")
	})
	if err != nil {
		return "", err.Error()
	}
	return bin, ""
}

// firstLine is the go command's failure without its output, or the
// proxy's answer where it has the module but not this version.
func firstLine(err error) error {
	if strings.Contains(err.Error(), "This module version is not available") {
		return errors.New("the Go module proxy answers: This module version is not available")
	}
	line, _, _ := strings.Cut(err.Error(), "\n")
	return errors.New(line)
}

// builder writes the binary to out, using src as its scratch directory.
type builder func(ctx context.Context, logf Logf, src, out string) error

// ensureBuilt returns cache/bin/name, building it under an exclusive file
// lock: `go test ./...` runs several test binaries at once, and all of them
// may want the same build.
func ensureBuilt(ctx context.Context, logf Logf, name string, build builder) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "bin", name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(cache, name+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil { // built by whoever held the lock
		return bin, nil
	}

	src := filepath.Join(cache, "src", name)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	logf("building %s from its Go modules, once: later runs reuse %s", name, cache)
	tmp := bin + ".partial"
	if err := build(ctx, logf, src, tmp); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building %s failed: %w", name, err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	logf("built %s", bin)
	return bin, nil
}

func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// buildEtcd builds etcd in a throwaway module that requires the etcd server
// and pins its sibling modules to the same release.
func buildEtcd(ctx context.Context, logf Logf, src, out string) error {
	var replaces []string
	for _, m := range []string{"api", "client/pkg", "client", "pkg"} {
		mod := "go.etcd.io/etcd/" + m + "/v3"
		replaces = append(replaces, mod+" => "+mod+" "+EtcdVersion)
	}
	const pkg = "go.etcd.io/etcd/server/v3"
	logf("etcd %s (the apiserver's store): 1 to 3 minutes on 2 cores (the longer with an empty Go cache)", EtcdVersion)
	if err := writeToolModule(src, pkg, pkg+" "+EtcdVersion, replaces); err != nil {
		return err
	}
	return buildToolModule(ctx, logf, src, pkg, out)
}

// buildAPIServer builds kube-apiserver in a throwaway module that requires
// k8s.io/kubernetes. That module replaces its staging modules with local
// directories, which a dependent cannot see, so each one is pinned to the
// matching published v0 release instead.
func buildAPIServer(ctx context.Context, logf Logf, src, out string) error {
	logf("kube-apiserver %s: the longest step, 7 to 12 minutes on 2 cores (the longer with an empty Go cache)", KubernetesVersion)
	logf("reading k8s.io/kubernetes@%s's go.mod for its staging modules", KubernetesVersion)
	goMod, err := downloadGoMod(ctx, logf, src, "k8s.io/kubernetes@"+KubernetesVersion)
	if err != nil {
		return err
	}
	staging, err := stagingModules(goMod)
	if err != nil {
		return err
	}
	stagingVersion := "v0" + strings.TrimPrefix(KubernetesVersion, "v1")
	var replaces []string
	for _, m := range staging {
		replaces = append(replaces, m+" => "+m+" "+stagingVersion)
	}
	const pkg = "k8s.io/kubernetes/cmd/kube-apiserver"
	if err := writeToolModule(src, pkg, "k8s.io/kubernetes "+KubernetesVersion, replaces); err != nil {
		return err
	}
	return buildToolModule(ctx, logf, src, pkg, out)
}

func writeToolModule(dir, pkg, require string, replaces []string) error {
	goMod := "module warpdns.local/tool\n\ngo 1.26\n\nrequire " + require + "\n"
	if len(replaces) > 0 {
		goMod += "\nreplace (\n\t" + strings.Join(replaces, "\n\t") + "\n)\n"
	}
	tools := "//go:build tools\n\npackage tool\n\nimport _ \"" + pkg + "\"\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tools.go"), []byte(tools), 0o644)
}

func buildToolModule(ctx context.Context, logf Logf, dir, pkg, out string) error {
	logf("resolving %s's dependencies (go mod tidy)", pkg)
	if err := goCommand(ctx, logf, dir, nil, "mod", "tidy"); err != nil {
		return err
	}
	logf("compiling %s (go build; quiet for minutes while it compiles)", pkg)
	return goCommand(ctx, logf, dir, nil, "build", "-o", out, pkg)
}

func downloadGoMod(ctx context.Context, logf Logf, dir, modVersion string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modVersion)
	cmd.Dir = dir
	cmd.Env = goEnv(nil)
	outBytes, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", modVersion, err)
	}
	var info struct{ GoMod, Error string }
	if err := json.Unmarshal(outBytes, &info); err != nil {
		return "", err
	}
	if info.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", modVersion, info.Error)
	}
	data, err := os.ReadFile(info.GoMod)
	return string(data), err
}

// stagingModules lists the modules a go.mod replaces with ./staging/ paths.
func stagingModules(goMod string) ([]string, error) {
	var mods []string
	scanner := bufio.NewScanner(strings.NewReader(goMod))
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "./staging/") {
			mods = append(mods, fields[0])
		}
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("no ./staging replacements found in k8s.io/kubernetes go.mod")
	}
	return mods, scanner.Err()
}

// goCommand runs the go tool, passing its output to logf line by line, and
// returns the tail of that output with the error so a failed build explains
// itself.
func goCommand(ctx context.Context, logf Logf, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = goEnv(env)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var tail []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		scanner := bufio.NewScanner(pr)
		for scanner.Scan() {
			line := scanner.Text()
			tail = append(tail, line)
			if len(tail) > 20 {
				tail = tail[1:]
			}
			if !strings.HasPrefix(line, "go: downloading") {
				logf("  %s", line)
			}
		}
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, strings.Join(tail, "\n"))
	}
	return nil
}

// goEnv is the caller's environment for a build outside this repository: no
// workspace, and modules resolved from the proxy as usual.
func goEnv(extra []string) []string {
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"))
	return append(env, extra...)
}
