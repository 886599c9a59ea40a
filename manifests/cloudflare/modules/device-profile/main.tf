# The WARP device profile for the developers: Split Tunnels in Include mode
# with every environment's VPC ranges (and the clusters' Service domain), and
# its Local Domain Fallback list, always: Cloudflare's default list without
# the entries that would swallow the cluster domain, plus, for plans without
# Gateway resolver policies, the entries that send each environment's domain
# to that cluster's load balancer. One profile for all environments: Split
# Tunnel and fallback lists belong to a profile, not to an environment.
#
# Why always: the WARP client applies Local Domain Fallback on the device
# before Gateway sees a query ("If both Local Domain Fallback and resolver
# policies are configured for the same device, Cloudflare will apply
# client-side Local Domain Fallback rules first",
# https://developers.cloudflare.com/cloudflare-one/team-and-resources/devices/warp/configure-warp/route-traffic/local-domains/),
# and the default list holds `local`: every *.svc.cluster.local name would
# go to the laptop's own resolver (its home router: NXDOMAIN) and never reach
# a resolver policy. Entries match as suffixes ("example.com is interpreted
# as *.example.com", same page).

locals {
  # Cloudflare's default Local Domain Fallback list, the one a new profile
  # starts with ("By default, Cloudflare Zero Trust excludes common top-level
  # domains, used for local resolution", page above). The names as the WARP
  # client itself lists them, `warp-cli settings`, "Fallback domains:"
  # (output of a client with the default profile: https://pastebin.com/LpzH71AB).
  # The only copy of this list in the repository: test/e2e and the docs read
  # it from here (output cloudflare_default_fallback_domains).
  cloudflare_default_fallback_domains = [
    "intranet", "internal", "private", "localdomain", "domain", "lan", "home",
    "host", "corp", "local", "localhost", "home.arpa", "invalid", "test",
  ]
  # Kept: every default entry except the cluster domain and its suffixes
  # (`local` for cluster.local). Without a dns_server an entry goes to the
  # resolver the device used before WARP started, as by default (provider
  # v5.22.0 internal/services/zero_trust_device_custom_profile_local_domain_fallback/schema.go:
  # dns_server optional).
  kept_default_fallback_domains = [
    for d in local.cloudflare_default_fallback_domains : d
    if !(d == var.cluster_domain || trimsuffix(var.cluster_domain, ".${d}") != var.cluster_domain)
  ]
  fallback_domains = concat(
    [for d in local.kept_default_fallback_domains : {
      suffix      = d
      description = "Cloudflare default, kept (warpdns)"
      dns_server  = null
    }],
    var.local_domain_fallback,
  )
}

resource "cloudflare_zero_trust_device_custom_profile" "this" {
  account_id  = var.account_id
  name        = var.name
  description = "Cluster VPCs and Service names through WARP (warpdns). Managed by Terraform."
  match       = var.match
  precedence  = var.precedence
  enabled     = true
  include = concat(var.include, [{
    host        = "*.svc.${var.cluster_domain}"
    description = "Kubernetes Service names (warpdns)"
  }])
}

# The profile's whole fallback list, in both modes: the resource's domains
# (a required set, provider v5.22.0
# internal/services/zero_trust_device_custom_profile_local_domain_fallback/schema.go)
# are the list the devices of this profile get, defaults included.
resource "cloudflare_zero_trust_device_custom_profile_local_domain_fallback" "this" {
  account_id = var.account_id
  policy_id  = cloudflare_zero_trust_device_custom_profile.this.policy_id
  domains    = local.fallback_domains
}
