terraform {
  required_version = ">= 1.5"
  required_providers {
    # See modules/environment/versions.tf.
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 5.22.0"
    }
  }
}

# The API token comes from the environment: export CLOUDFLARE_API_TOKEN=...
# (README.md lists the permissions it needs).
provider "cloudflare" {}
