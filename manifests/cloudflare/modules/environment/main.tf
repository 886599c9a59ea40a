# One Kubernetes cluster (one environment) made reachable over Cloudflare
# WARP: a remotely managed tunnel for cloudflared in the cluster, a virtual
# network of its own (VPC ranges of different clusters may overlap), the
# private routes of its VPC into that network, and the Gateway resolver policy
# that sends this environment's Service names to the cluster's CoreDNS
# (kube-dns-nlb). The device profile, shared by all environments, takes this
# module's split_tunnel_include (and local_domain_fallback) outputs.

locals {
  cluster_domain_re = replace(var.cluster_domain, ".", "\\.")
  # stg-api.platform.svc.cluster.local, and the SRV names
  # (_http._tcp.stg-api.platform...) and SRV targets
  # (10-0-0-1.stg-api.platform...) that envalias answers below it: the ENV
  # starts a label, the Service and namespace labels follow.
  resolver_regex = coalesce(var.resolver_regex, "(^|\\.)${var.env}-[^.]+\\.[^.]+\\.svc\\.${local.cluster_domain_re}$")
  vnet_id        = var.virtual_network_id != null ? var.virtual_network_id : cloudflare_zero_trust_tunnel_cloudflared_virtual_network.this[0].id
  # The load balancer's IPv4 and IPv6 addresses: the resolver policy lists
  # them apart (rule_settings.dns_resolvers.ipv4 / .ipv6, each entry
  # {ip, port, route_through_private_network, vnet_id}: provider v5.22.0
  # internal/services/zero_trust_gateway_policy/schema.go).
  lb_ipv4 = [for ip in var.lb_ips : ip if !strcontains(ip, ":")]
  lb_ipv6 = [for ip in var.lb_ips : ip if strcontains(ip, ":")]
}

resource "cloudflare_zero_trust_tunnel_cloudflared" "this" {
  account_id = var.account_id
  name       = coalesce(var.tunnel_name, "${var.env}-warpdns")
  # Remotely managed: cloudflared runs with a token only
  # (manifests/cloudflared), its configuration lives here.
  config_src = "cloudflare"
}

data "cloudflare_zero_trust_tunnel_cloudflared_token" "this" {
  account_id = var.account_id
  tunnel_id  = cloudflare_zero_trust_tunnel_cloudflared.this.id
}

resource "cloudflare_zero_trust_tunnel_cloudflared_virtual_network" "this" {
  count      = var.virtual_network_id == null ? 1 : 0
  account_id = var.account_id
  name       = "${var.env}-vpc"
  comment    = "The ${var.env} cluster's VPC, reached through tunnel ${coalesce(var.tunnel_name, "${var.env}-warpdns")}."
}

resource "cloudflare_zero_trust_tunnel_cloudflared_route" "vpc" {
  for_each           = toset(var.vpc_cidrs)
  account_id         = var.account_id
  tunnel_id          = cloudflare_zero_trust_tunnel_cloudflared.this.id
  network            = each.value
  virtual_network_id = local.vnet_id
  comment            = "${var.env}: pod IPs and the kube-dns-nlb load balancer"
}

# A resolver policy keeps the virtual network it was created with: moving the
# routes to another network does not update it. Replace it when the network
# changes.
resource "terraform_data" "resolver_network" {
  input = local.vnet_id
}

resource "cloudflare_zero_trust_gateway_policy" "resolver" {
  count       = var.resolver_policy ? 1 : 0
  account_id  = var.account_id
  name        = "${var.env}: cluster Service names to the ${var.env} CoreDNS"
  description = "Sends ${var.env}-SVC.NS.svc.${var.cluster_domain} to kube-dns-nlb (${join(", ", var.lb_ips)}) over tunnel ${cloudflare_zero_trust_tunnel_cloudflared.this.name}. Managed by Terraform (warpdns)."
  enabled     = true
  precedence  = var.resolver_policy_precedence
  action      = "resolve"
  filters     = ["dns_resolver"]
  traffic     = "dns.fqdn matches \"${local.resolver_regex}\""
  rule_settings = {
    dns_resolvers = {
      ipv4 = length(local.lb_ipv4) == 0 ? null : [for ip in local.lb_ipv4 : {
        ip                            = ip
        port                          = var.lb_port
        route_through_private_network = true
        vnet_id                       = local.vnet_id
      }]
      ipv6 = length(local.lb_ipv6) == 0 ? null : [for ip in local.lb_ipv6 : {
        ip                            = ip
        port                          = var.lb_port
        route_through_private_network = true
        vnet_id                       = local.vnet_id
      }]
    }
  }

  # The routes must exist before Gateway can reach the resolver through them.
  depends_on = [cloudflare_zero_trust_tunnel_cloudflared_route.vpc]

  lifecycle {
    replace_triggered_by = [terraform_data.resolver_network]
  }
}
