// Package cluster runs a real Kubernetes control plane (etcd and
// kube-apiserver, built from their Go modules) on loopback for tests and for
// `make run`, and writes Services and EndpointSlices the way the endpointslice
// controller would, since no controller-manager runs.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Service CIDRs of the local cluster: dual-stack, so that tests can create
// IPv4, IPv6 and dual-stack Services.
const (
	ServiceCIDRv4 = "10.96.0.0/16"
	ServiceCIDRv6 = "fd00:10:96::/112"
)

// Options tune Start.
type Options struct {
	Logf Logf   // progress lines; nil discards them
	Dir  string // working directory; a new temporary one when empty
	// Netns runs etcd and kube-apiserver inside this network namespace (as
	// `ip netns` names it; it must exist with lo up), on its loopback: a
	// cluster of its own for processes in that namespace. Client and the
	// readiness checks connect into it (see NetnsDialContext); Kubeconfig
	// works from inside the namespace only. Empty: the caller's namespace.
	Netns string
	// ServiceCIDRs is --service-cluster-ip-range: one CIDR for a
	// single-stack cluster (as EKS makes them: one IP family, chosen when
	// the cluster is created), two for dual-stack. Empty: ServiceCIDRv4 and
	// ServiceCIDRv6.
	ServiceCIDRs []string
	// APIServerArgs are more kube-apiserver flags, for a control plane
	// configured as a platform configures its own (an admission
	// configuration, say). They come after the harness's.
	APIServerArgs []string
}

// Cluster is a running etcd + kube-apiserver pair on loopback.
type Cluster struct {
	Kubeconfig string // admin kubeconfig (token in group system:masters)
	Client     kubernetes.Interface
	RESTConfig *rest.Config
	Server     string // https://127.0.0.1:PORT
	Token      string // admin bearer token
	Netns      string // the network namespace it runs in ("" for the caller's)

	dir        string
	removeDir  bool
	etcd       *Process
	apiserver  *Process
	etcdClient string // etcd's client URL

	// What started the two processes, to start them again the same way
	// (same ports, same data) after StopEtcd or StopAPIServer.
	bins          Binaries
	serviceCIDRs  []string
	etcdArgs      []string
	apiserverArgs []string
	http          *http.Client

	extraAPIServerArgs []string // Options.APIServerArgs
}

// Start builds (or reuses) the binaries and starts etcd and kube-apiserver on
// free loopback ports, returning once the apiserver's /readyz answers ok.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	bins, err := EnsureBinaries(ctx, logf)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: opts.Dir, Netns: opts.Netns, serviceCIDRs: opts.ServiceCIDRs, extraAPIServerArgs: opts.APIServerArgs,
		http: insecureLoopbackClient}
	if len(c.serviceCIDRs) == 0 {
		c.serviceCIDRs = []string{ServiceCIDRv4, ServiceCIDRv6}
	}
	if opts.Netns != "" {
		c.http = netnsLoopbackClient(opts.Netns)
	}
	if c.dir != "" {
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return nil, err
		}
	} else {
		if c.dir, err = os.MkdirTemp("", "warpdns-cluster-"); err != nil {
			return nil, err
		}
		c.removeDir = true
	}
	if err := c.start(ctx, logf, bins); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, logf Logf, bins Binaries) error {
	ports, err := FreePorts(3)
	if err != nil {
		return err
	}
	etcdClientPort, etcdPeerPort, apiPort := ports[0], ports[1], ports[2]
	c.etcdClient = fmt.Sprintf("http://127.0.0.1:%d", etcdClientPort)
	etcdPeer := fmt.Sprintf("http://127.0.0.1:%d", etcdPeerPort)

	c.bins = bins
	c.etcdArgs = []string{
		"--name=local",
		"--data-dir=" + filepath.Join(c.dir, "etcd-data"),
		"--listen-client-urls=" + c.etcdClient,
		"--advertise-client-urls=" + c.etcdClient,
		"--listen-peer-urls=" + etcdPeer,
		"--initial-advertise-peer-urls=" + etcdPeer,
		"--initial-cluster=local=" + etcdPeer,
		"--log-level=warn",
		"--unsafe-no-fsync", // a throwaway store: durability buys nothing here
	}
	logf("starting etcd %s on %s", EtcdVersion, c.etcdClient)
	if err := c.StartEtcd(ctx); err != nil {
		return err
	}

	token, err := c.writeCredentials()
	if err != nil {
		return err
	}
	c.Token = token
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	c.apiserverArgs = []string{
		"--etcd-servers=" + c.etcdClient,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", apiPort),
		"--cert-dir=" + filepath.Join(c.dir, "pki"),
		"--token-auth-file=" + filepath.Join(c.dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-key-file=" + filepath.Join(c.dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(c.dir, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=" + strings.Join(c.serviceCIDRs, ","),
		// No kubelet or controller-manager: the loopback address would
		// not be a valid endpoint for the kubernetes Service anyway.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	}
	c.apiserverArgs = append(c.apiserverArgs, c.extraAPIServerArgs...)
	logf("starting kube-apiserver %s on %s", KubernetesVersion, c.Server)
	if err := c.StartAPIServer(ctx); err != nil {
		return err
	}

	c.Kubeconfig = filepath.Join(c.dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, []byte(KubeconfigFor(c.Server, c.Token)), 0o600); err != nil {
		return err
	}
	if c.RESTConfig, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return err
	}
	c.RESTConfig.QPS, c.RESTConfig.Burst = 500, 1000 // tests create objects in bulk
	if c.Netns != "" {
		c.RESTConfig.Dial = NetnsDialContext(c.Netns)
	}
	if c.Client, err = kubernetes.NewForConfig(c.RESTConfig); err != nil {
		return err
	}
	logf("control plane ready; kubeconfig: %s", c.Kubeconfig)
	return nil
}

// StartEtcd starts etcd (again, after StopEtcd: same port, same data) and
// waits until it is healthy.
func (c *Cluster) StartEtcd(ctx context.Context) error {
	var err error
	if c.etcd, err = StartProcess(c.dir, c.Netns, "etcd", c.bins.Etcd, c.etcdArgs...); err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, c.etcd, func() error { return httpGet(c.http, c.etcdClient+"/health", "") }); err != nil {
		return fmt.Errorf("etcd did not become healthy: %w", err)
	}
	return nil
}

// StopEtcd stops etcd and leaves kube-apiserver running without its store,
// for fault tests.
func (c *Cluster) StopEtcd() error { return c.etcd.Stop() }

// StartAPIServer starts kube-apiserver (again, after StopAPIServer: same
// port, same credentials) and waits until /readyz answers ok.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	var err error
	if c.apiserver, err = StartProcess(c.dir, c.Netns, "kube-apiserver", c.bins.APIServer, c.apiserverArgs...); err != nil {
		return err
	}
	if err := waitFor(ctx, 60*time.Second, c.apiserver, func() error { return httpGet(c.http, c.Server+"/readyz", c.Token) }); err != nil {
		return fmt.Errorf("kube-apiserver did not become ready: %w", err)
	}
	return nil
}

// StopAPIServer stops kube-apiserver, for fault tests.
func (c *Cluster) StopAPIServer() error { return c.apiserver.Stop() }

// writeCredentials writes the admin token file and the service-account key
// pair the apiserver requires, and returns the token.
func (c *Cluster) writeCredentials() (string, error) {
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw)
	tokens := token + `,admin,admin-uid,"system:masters"` + "\n"
	if err := os.WriteFile(filepath.Join(c.dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return "", err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	if err := os.WriteFile(filepath.Join(c.dir, "sa.key"), keyPEM, 0o600); err != nil {
		return "", err
	}
	return token, os.WriteFile(filepath.Join(c.dir, "sa.pub"), pubPEM, 0o644)
}

// KubeconfigFor is a kubeconfig for server with a bearer token (context
// "local"). It skips TLS verification: the apiserver's certificate is
// self-signed at start, and it only ever listens on loopback.
func KubeconfigFor(server, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: local
  context:
    cluster: local
    user: admin
current-context: local
`, server, token)
}

// Stop stops kube-apiserver, then etcd, and removes the working directory if
// Start created it. It is safe to call more than once.
func (c *Cluster) Stop() error {
	errs := []error{c.apiserver.Stop(), c.etcd.Stop()}
	c.apiserver, c.etcd = nil, nil
	if c.removeDir && c.dir != "" {
		errs = append(errs, os.RemoveAll(c.dir))
		c.dir = ""
	}
	return errors.Join(errs...)
}

// Process is a child we started; it dies with us (Pdeathsig) even if we are
// killed before Stop runs, so nothing is left behind.
type Process struct {
	Started time.Time
	name    string
	cmd     *exec.Cmd
	log     string
	done    chan struct{}
	err     error
}

// StartProcess starts bin in a process group of its own, its output in
// dir/name.log, inside network namespace netns unless it is empty (`ip netns
// exec` joins it and then executes bin in its own place, so the child is bin
// itself and Pdeathsig still applies).
func StartProcess(dir, netns, name, bin string, args ...string) (*Process, error) {
	return startCommand(dir, name, netnsCommand(netns, bin, args...))
}

func netnsCommand(netns, bin string, args ...string) *exec.Cmd {
	if netns == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", netns, bin}, args...)...)
}

// Niced runs bin under nice(1) when niceness is not 0. nice executes bin in
// its own place, so the process (and its PID) is bin's, and every thread it
// starts has the niceness from the start. Without the privilege to lower it
// nice says so and runs bin as it is.
func Niced(niceness int, bin string, args ...string) *exec.Cmd {
	if niceness == 0 {
		return exec.Command(bin, args...)
	}
	return exec.Command("nice", append([]string{"-n", strconv.Itoa(niceness), bin}, args...)...)
}

func startCommand(dir, name string, cmd *exec.Cmd) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, log: logPath, done: make(chan struct{}), Started: started}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Memory is the process's resident set size (VmRSS) and the part of it that
// maps files (RssFile: the binary, mostly), in bytes.
func (p *Process) Memory() (rss, files int64, err error) {
	proc, err := procfs.NewProc(p.cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	status, err := proc.NewStatus()
	return int64(status.VmRSS), int64(status.RssFile), err
}

// CPUTime is the CPU time (user + system, all threads) the process has used.
func (p *Process) CPUTime() (time.Duration, error) {
	proc, err := procfs.NewProc(p.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	stat, err := proc.Stat()
	return time.Duration(stat.CPUTime() * float64(time.Second)), err
}

// Kill kills the process group at once and waits for it, where nothing
// measures a shutdown (SIGTERM would sit through the health plugin's
// lameduck every time).
func (p *Process) Kill() {
	if p == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group and SIGKILL after a grace period.
func (p *Process) Stop() error {
	if p == nil || p.Exited() {
		return nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return nil
}

// Log returns what the process printed so far.
func (p *Process) Log() string {
	data, _ := os.ReadFile(p.log)
	return string(data)
}

// logTail returns the last lines of the process log, for error messages.
func (p *Process) logTail() string {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls check until it succeeds, the process dies, or time runs out.
func waitFor(ctx context.Context, timeout time.Duration, p *Process, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited (%v); last log lines (%s):\n%s", p.name, p.err, p.log, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v after %s; last log lines (%s):\n%s", err, timeout, p.log, p.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond): // startup times are measured to the next poll
		}
	}
}

var insecureLoopbackClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // #nosec G402 -- loopback, self-signed
}

func httpGet(client *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 (and free
// for UDP too, since DNS servers listen on both) at the time of the call.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var held []interface{ Close() error }
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken for UDP: try another
		}
		held = append(held, u)
		ports = append(ports, port)
	}
	return ports, nil
}
