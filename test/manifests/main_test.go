// Package manifests is `make manifests-check`: it builds every kustomization
// under manifests/ with the kustomize library (as `kubectl apply -k` would),
// checks what comes out (the Corefiles, the security defaults, the load
// balancer values), server-side dry-run applies every build to a real local
// kube-apiserver (test/cluster), runs the standalone Corefile with the
// standalone ServiceAccount's own token, and checks the Terraform example
// against the Cloudflare provider's schema.
package manifests

import (
	"bytes"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/warpdns/warpdns/test/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// Ways and platforms: every way must compose with every platform.
var (
	ways      = []string{"replace-kube-dns", "standalone"}
	platforms = []string{"aws", "gke", "aks", "cilium", "metallb"}
)

// kustomization is one buildable directory under manifests/ (in memFS).
type kustomization struct {
	name string // e.g. overlays/eks-stg, matrix/standalone-on-aws
	dir  string // its directory in the filesystem built by loadManifests
}

// repoRoot is the repository's root directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// loadManifests copies manifests/ into an in-memory filesystem, at /manifests,
// and adds one generated kustomization per way and platform under
// /manifests/matrix, so that nothing is written to the work tree. It returns
// the filesystem and every kustomization to build: the bases, the
// checked-in overlays, cloudflared and the matrix.
func loadManifests(t testing.TB) (filesys.FileSystem, []kustomization) {
	t.Helper()
	src := filepath.Join(repoRoot(t), "manifests")
	mem := filesys.MakeFsInMemory()
	tree := os.DirFS(src)
	err := fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(tree, p)
		if err != nil {
			return err
		}
		return mem.WriteFile(path.Join("/manifests", p), data)
	})
	if err != nil {
		t.Fatal(err)
	}

	var ks []kustomization
	for _, way := range ways {
		ks = append(ks, kustomization{"base/" + way, "/manifests/base/" + way})
	}
	overlays, err := os.ReadDir(filepath.Join(src, "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range overlays {
		if o.IsDir() {
			ks = append(ks, kustomization{"overlays/" + o.Name(), "/manifests/overlays/" + o.Name()})
		}
	}
	ks = append(ks, kustomization{"cloudflared", "/manifests/cloudflared"})
	for _, way := range ways {
		for _, platform := range platforms {
			dir := "/manifests/matrix/" + way + "-on-" + platform
			k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
				"resources:\n  - ../../base/" + way + "\ncomponents:\n  - ../../platforms/" + platform + "\n"
			if err := mem.WriteFile(dir+"/kustomization.yaml", []byte(k)); err != nil {
				t.Fatal(err)
			}
			ks = append(ks, kustomization{"matrix/" + way + "-on-" + platform, dir})
		}
	}
	return mem, ks
}

// build runs kustomize on dir as `kubectl kustomize` does (load restrictions:
// files only from inside the kustomization's root) and returns the objects.
func build(t testing.TB, fsys filesys.FileSystem, dir string) []*unstructured.Unstructured {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatalf("kustomize build %s: %v", dir, err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// find returns the object of that kind and name, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// platformOf tells which platform component a kustomization uses, from the
// annotations it produced ("" for none).
func platformOf(objs []*unstructured.Unstructured) string {
	svc := find(objs, "Service", "kube-dns-nlb")
	if svc == nil {
		return ""
	}
	a := svc.GetAnnotations()
	class, _, _ := unstructured.NestedString(svc.Object, "spec", "loadBalancerClass")
	switch {
	case a["service.beta.kubernetes.io/aws-load-balancer-type"] != "":
		return "aws"
	case a["networking.gke.io/load-balancer-type"] != "", strings.HasPrefix(class, "networking.gke.io/"):
		return "gke"
	case a["service.beta.kubernetes.io/azure-load-balancer-internal"] != "":
		return "aks"
	case find(objs, "CiliumLoadBalancerIPPool", "warpdns") != nil:
		return "cilium"
	case find(objs, "IPAddressPool", "warpdns") != nil:
		return "metallb"
	}
	return ""
}

// decodeObjects reads YAML (or JSON) documents, as kubectl does.
func decodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// readObjects reads the YAML documents of a testdata file.
func readObjects(t testing.TB, file string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return objs
}

// convert decodes o into its typed API object.
func convert[T any](t testing.TB, o *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err != nil {
		t.Fatalf("%s: %v", describe(o), err)
	}
	return &v
}

// ofKind converts the objects of one kind.
func ofKind[T any](t testing.TB, objs []*unstructured.Unstructured, kind string) []*T {
	t.Helper()
	var out []*T
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, convert[T](t, o))
		}
	}
	return out
}

func deployments(t testing.TB, objs []*unstructured.Unstructured) []*appsv1.Deployment {
	return ofKind[appsv1.Deployment](t, objs, "Deployment")
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func describe(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetKind() + " " + ns + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}

// overlayEnv is the environment a kustomization deploys: prd for eks-prd,
// stg for the others (what docs and Terraform call them).
func overlayEnv(name string) string {
	if strings.HasSuffix(name, "-prd") {
		return "prd"
	}
	return "stg"
}

// warpdnsEnv lists the WARPDNS_ENV values (which the Corefile's envalias
// reads) that the Deployments set.
func warpdnsEnv(t testing.TB, objs []*unstructured.Unstructured) []string {
	var env []string
	for _, d := range deployments(t, objs) {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == "WARPDNS_ENV" {
					env = append(env, e.Value)
				}
			}
		}
	}
	return env
}
