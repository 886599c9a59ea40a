package main

import (
	"bytes"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/CycloneDX/cyclonedx-gomod/pkg/generate/bin"
	"github.com/rs/zerolog"
)

// cycloneDXSBOM is the CycloneDX SBOM of a Go binary, from the module list
// the Go linker embedded in it (what `go version -m` prints, with each
// module's go.sum hash), by cyclonedx-gomod's `bin` generator. Dated to the
// image's creation time and without a random serial number, so that the
// same binary gives the same SBOM.
func cycloneDXSBOM(binary string, o options) ([]byte, error) {
	gen, err := bin.NewGenerator(binary,
		bin.WithIncludeStdlib(true),
		bin.WithVersionOverride(o.version),
		bin.WithLogger(zerolog.Nop()))
	if err != nil {
		return nil, err
	}
	bom, err := gen.Generate()
	if err != nil {
		return nil, err
	}
	bom.Metadata.Timestamp = o.created.UTC().Format(time.RFC3339)
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).Encode(bom); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
