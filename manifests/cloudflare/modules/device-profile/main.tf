# The WARP device profile for the developers: Split Tunnels in Include mode
# with every environment's VPC ranges (and the clusters' Service domain), and,
# for plans without Gateway resolver policies, Local Domain Fallback entries
# that send each environment's domain to that cluster's load balancer. One
# profile for all environments: Split Tunnel and fallback lists belong to a
# profile, not to an environment.

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

resource "cloudflare_zero_trust_device_custom_profile_local_domain_fallback" "this" {
  count      = length(var.local_domain_fallback) > 0 ? 1 : 0
  account_id = var.account_id
  policy_id  = cloudflare_zero_trust_device_custom_profile.this.policy_id
  domains    = var.local_domain_fallback
}
