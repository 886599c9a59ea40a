package manifests

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// What the docs and the manifests' comments tell an operator to run, checked
// against the vendor behaviour each claim rests on. The behaviour itself is
// cited where the claim is made (docs/deploy.md).

// deployTexts returns the text of every file an operator reads before
// deploying (docs, the manifests and their comments, the chart), keyed by
// path, with comment markers and line breaks folded into single spaces so
// that a phrase wrapped over lines still matches.
func deployTexts(t *testing.T) map[string]string {
	t.Helper()
	root := repoRoot(t)
	texts := map[string]string{}
	fold := regexp.MustCompile(`\s*\n\s*(#\s*)?`)
	for _, dir := range []string{"docs", "manifests", filepath.Join("charts", "warpdns")} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			switch filepath.Ext(p) {
			case ".md", ".yaml", ".txt", ".tpl", ".tf":
			default:
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			texts[rel] = fold.ReplaceAllString(string(data), " ")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return texts
}

// TestDocsKubeadmUpgrade: since kubeadm 1.28 the addons are upgraded once the
// last control-plane node is upgraded, which in an HA cluster is a `kubeadm
// upgrade node` (k8s.io/kubernetes v1.37.2 cmd/kubeadm/app/cmd/upgrade/node.go
// appends the addon phase; cmd/kubeadm/app/cmd/phases/upgrade/addons.go skips
// it while another control-plane instance runs the old kube-apiserver). Every
// text that tells how to keep kubeadm from putting its CoreDNS back
// (--skip-phases) must therefore name `kubeadm upgrade node` too.
func TestDocsKubeadmUpgrade(t *testing.T) {
	found := false
	for path, text := range deployTexts(t) {
		if !strings.Contains(text, "skip-phases") {
			continue
		}
		found = true
		if !regexp.MustCompile("kubeadm upgrade node`? `?--skip-phases|--skip-phases=addon/coredns` on `kubeadm upgrade apply` and on every `kubeadm upgrade node").MatchString(text) {
			t.Errorf("%s: tells to skip addon/coredns in `kubeadm upgrade apply` only; in an HA cluster the last control-plane node's `kubeadm upgrade node` upgrades CoreDNS", path)
		}
	}
	if !found {
		t.Error("no text says how to keep kubeadm from upgrading CoreDNS (--skip-phases)")
	}
}

// TestDocsWayOneOnK3s: way 1 patches an existing Deployment kube-system/coredns.
// k3s started with --disable coredns has none, and with the component
// enabled it deploys its own manifest again on every start
// (https://docs.k3s.io/installation/packaged-components): no text may offer
// way 1 for k3s with CoreDNS disabled.
func TestDocsWayOneOnK3s(t *testing.T) {
	claim := regexp.MustCompile(`(?i)k3s with (its )?CoreDNS (addon|component)? ?disabled`)
	for path, text := range deployTexts(t) {
		if m := claim.FindString(text); m != "" {
			t.Errorf("%s: %q: with CoreDNS disabled k3s has no Deployment kube-system/coredns for way 1 to patch", path, m)
		}
	}
}

// gkeMixedProtocolInternal is the first GKE version whose internal passthrough
// load balancers carry UDP and TCP in one Service: "Mixed-protocol load
// balancing is generally available for GKE version 1.36.2-gke.1498000 and
// later"; from 1.34.1-gke.2190000 "only for external load balancers with IPv4
// addresses" (https://docs.cloud.google.com/kubernetes-engine/docs/how-to/mixed-protocol-lb,
// Requirements). 1.33.1-gke.1779000 is when the loadBalancerClass itself
// arrived (service-load-balancer-parameters), not mixed protocols.
const gkeMixedProtocolInternal = "1.36.2-gke.1498000"

// TestDocsGKEMixedProtocolVersion: every file that asks GKE for one internal
// Service with UDP and TCP (the l4-regional-internal class) states the
// version it needs.
func TestDocsGKEMixedProtocolVersion(t *testing.T) {
	sets := 0
	for path, text := range deployTexts(t) {
		if !strings.Contains(text, "loadBalancerClass: networking.gke.io/l4-regional-internal") {
			continue
		}
		sets++
		if !strings.Contains(text, gkeMixedProtocolInternal) {
			t.Errorf("%s sets the mixed-protocol internal class but does not say it needs GKE %s", path, gkeMixedProtocolInternal)
		}
		if m := regexp.MustCompile(`1\.33\.1-gke\.1779000\+? with GKE subsetting`).FindString(text); m != "" {
			t.Errorf("%s: %q is the class's minimum, not the mixed-protocol one (%s)", path, m, gkeMixedProtocolInternal)
		}
	}
	if sets < 2 {
		t.Errorf("%d files set the class, want the chart's template and platforms/gke at least", sets)
	}
}

// TestDocsRollback: `kubectl rollout undo` goes back ONE revision, to the
// Deployment's previous pod template ("--to-revision: The revision to
// rollback to. Default to 0 (last revision)", k8s.io/kubectl v0.37.2
// pkg/cmd/rollout/rollout_undo.go); after a helm upgrade that is warpdns
// again, not the stock CoreDNS. A text that offers it as the way back to
// stock must name the revision.
func TestDocsRollback(t *testing.T) {
	undo := regexp.MustCompile("rollout undo deployment/coredns( --to-revision)?")
	for path, text := range deployTexts(t) {
		for _, m := range undo.FindAllStringSubmatch(text, -1) {
			if m[1] == "" {
				t.Errorf("%s: `rollout undo deployment/coredns` without --to-revision returns to the previous revision only (after a helm upgrade: warpdns again)", path)
			}
		}
	}
}
