# Two clusters, stg and prd, each in its own virtual network with its own
# resolver policy, and one WARP profile for the developers. Who may use
# which: stg_access and prd_access (terraform.tfvars.example: stg for the
# developers group, prd for on-call; left out, everyone in the profile). Fill in
# terraform.tfvars (see terraform.tfvars.example and README.md).

locals {
  ldf = !var.resolver_policies
}

# Local Domain Fallback is resolved from the device, in the virtual network
# the device is connected to: both environments' load balancers must be
# reachable from that one network.
resource "cloudflare_zero_trust_tunnel_cloudflared_virtual_network" "shared" {
  count      = local.ldf ? 1 : 0
  account_id = var.account_id
  name       = "clusters"
  comment    = "stg and prd cluster VPCs (warpdns, Local Domain Fallback)."
}

module "stg" {
  source                     = "../../modules/environment"
  account_id                 = var.account_id
  env                        = "stg"
  lb_ips                     = var.stg_lb_ips
  vpc_cidrs                  = var.stg_vpc_cidrs
  resolver_policy            = var.resolver_policies
  resolver_policy_precedence = 1000
  ldf_domain                 = local.ldf ? var.ldf_domain : null
  virtual_network_id         = local.ldf ? cloudflare_zero_trust_tunnel_cloudflared_virtual_network.shared[0].id : null
  access                     = var.stg_access
  org_gateway_policies       = var.org_gateway_policies
}

module "prd" {
  source                     = "../../modules/environment"
  account_id                 = var.account_id
  env                        = "prd"
  lb_ips                     = var.prd_lb_ips
  vpc_cidrs                  = var.prd_vpc_cidrs
  resolver_policy            = var.resolver_policies
  resolver_policy_precedence = 1010
  ldf_domain                 = local.ldf ? var.ldf_domain : null
  virtual_network_id         = local.ldf ? cloudflare_zero_trust_tunnel_cloudflared_virtual_network.shared[0].id : null
  access                     = var.prd_access
  org_gateway_policies       = var.org_gateway_policies
}

# The developers' profile keeps the organisation's WARP setup (its Split
# Tunnel and fallback lists, Cloudflare's defaults unless given) and adds the
# clusters to it.
module "developers" {
  source               = "../../modules/device-profile"
  account_id           = var.account_id
  match                = var.device_match
  include              = concat(module.stg.split_tunnel_include, module.prd.split_tunnel_include)
  split_tunnel_mode    = var.split_tunnel_mode
  org_exclude          = var.org_exclude
  org_include          = var.org_include
  org_fallback_domains = var.org_fallback_domains
  local_domain_fallback = local.ldf ? [
    module.stg.local_domain_fallback,
    module.prd.local_domain_fallback,
  ] : []
}

# The outward path: stg's internal web apps behind Access, through stg's
# tunnel. Nothing is created while stg_public_apps is empty.
module "stg_public_apps" {
  source                = "../../modules/access-apps"
  count                 = length(var.stg_public_apps) > 0 ? 1 : 0
  account_id            = var.account_id
  zone_id               = var.zone_id
  tunnel_id             = module.stg.tunnel_id
  team_name             = var.team_name
  name                  = "stg"
  allowed_email_domains = var.allowed_email_domains
  apps                  = var.stg_public_apps
}
