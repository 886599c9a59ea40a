terraform {
  required_version = ">= 1.5"
  required_providers {
    # Cloudflare provider v5.22.0 (tag v5.22.0 of
    # github.com/cloudflare/terraform-provider-cloudflare, CHANGELOG.md
    # "5.22.0 (2026-07-09)"), patch releases allowed. Every resource and
    # attribute below is checked against that tag's schema by `make
    # manifests-check` (test/manifests/testdata/cloudflare-provider-v5.json,
    # generated from internal/services/*/schema.go). v5 minor releases have
    # renamed and reshaped attributes before: upgrade on purpose, regenerate
    # the schema (TestProviderSchemaGenerate) and fix what it reports.
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 5.22.0"
    }
  }
}
