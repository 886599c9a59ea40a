terraform {
  required_version = ">= 1.5"
  required_providers {
    # Cloudflare provider v5. Resource and attribute names below are checked
    # against this version's schema by `make manifests-check`
    # (test/manifests/testdata/cloudflare-provider-v5.json). v5 minor releases
    # have renamed and reshaped attributes before: upgrade on purpose.
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 5.27.0"
    }
  }
}
