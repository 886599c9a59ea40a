package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BuildKit's attestation storage, which registries, containerd and docker
// already carry inside an image index:
// https://docs.docker.com/build/metadata/attestations/attestation-storage/
// (moby/buildkit docs/attestations/attestation-storage.md).
const (
	inTotoMediaType        = "application/vnd.in-toto+json"
	inTotoStatementType    = "https://in-toto.io/Statement/v0.1"
	predicateTypeAnnot     = "in-toto.io/predicate-type"
	referenceTypeAnnot     = "vnd.docker.reference.type"
	referenceDigestAnnot   = "vnd.docker.reference.digest"
	attestationManifestRef = "attestation-manifest"
	// The predicate type of a CycloneDX SBOM in an in-toto statement (what
	// `cosign attest --type cyclonedx` and `gh attestation verify
	// --predicate-type` use).
	cycloneDXPredicateType = "https://cyclonedx.org/bom"
)

// buildIndex makes the OCI image index: one image per binary (its platform
// from the binary's ELF header) and, after them, one attestation manifest
// per image carrying its CycloneDX SBOM, with platform unknown/unknown so
// that no runtime pulls it to run.
func buildIndex(o options) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var attestations []mutate.IndexAddendum
	seen := map[string]string{}
	for _, bin := range o.binaries {
		img, err := buildImage(o, bin)
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		platform := v1.Platform{OS: cf.OS, Architecture: cf.Architecture}
		if other, dup := seen[platform.String()]; dup {
			return nil, fmt.Errorf("%s and %s are both %s binaries; give one per platform", other, bin, platform)
		}
		seen[platform.String()] = bin
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &platform}})

		digest, err := img.Digest()
		if err != nil {
			return nil, err
		}
		sbom, err := cycloneDXSBOM(bin, o)
		if err != nil {
			return nil, err
		}
		att, err := attestationManifest(digest, sbom)
		if err != nil {
			return nil, err
		}
		attestations = append(attestations, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{referenceTypeAnnot: attestationManifestRef, referenceDigestAnnot: digest.String()},
		}})
	}
	return mutate.AppendManifests(idx, attestations...), nil
}

// attestationManifest wraps an SBOM in an in-toto statement about the image
// manifest `subject`, as the one layer of an image whose config says
// unknown/unknown.
func attestationManifest(subject v1.Hash, sbom []byte) (v1.Image, error) {
	statement, err := json.Marshal(map[string]any{
		"_type":         inTotoStatementType,
		"predicateType": cycloneDXPredicateType,
		"subject":       []map[string]any{{"name": "_", "digest": map[string]string{subject.Algorithm: subject.Hex}}},
		"predicate":     json.RawMessage(sbom),
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(ociEmptyImage(), mutate.Addendum{
		Layer:       static.NewLayer(statement, inTotoMediaType),
		Annotations: map[string]string{predicateTypeAnnot: cycloneDXPredicateType},
	})
	if err != nil {
		return nil, err
	}
	return withConfig(img, func(cf *v1.ConfigFile) { cf.OS, cf.Architecture = "unknown", "unknown" })
}

// writeOCIArchive writes idx as an OCI image layout (oci-layout, index.json,
// blobs/) in a tar file. index.json names the image twice: the tag in
// org.opencontainers.image.ref.name (the OCI image-layout spec; skopeo's
// oci-archive:FILE:TAG), the full name in io.containerd.image.name
// (containerd's and docker's load), as BuildKit's OCI exporter writes them.
func writeOCIArchive(out string, ref name.Tag, idx v1.ImageIndex, mtime time.Time) error {
	dir, err := os.MkdirTemp(filepath.Dir(out), ".warpdns-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          ref.Name(),
	})); err != nil {
		return err
	}
	// The files in lexical order with fixed owners and times (tarFiles), so
	// the same image gives the same tarball.
	var files []file
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path) // path is below dir
		f := file{name: filepath.ToSlash(rel), dir: d.IsDir()}
		if f.dir {
			f.name += "/"
		} else {
			f.data, err = os.ReadFile(path)
		}
		files = append(files, f)
		return err
	})
	if err != nil {
		return err
	}
	archive, err := tarFiles(files, mtime)
	if err != nil {
		return err
	}
	return os.WriteFile(out, archive, 0o644)
}
