# One Kubernetes cluster (one environment) made reachable over Cloudflare
# WARP: a remotely managed tunnel for cloudflared in the cluster, a virtual
# network of its own (VPC ranges of different clusters may overlap), the
# private routes of its VPC into that network, and the Gateway resolver policy
# that sends this environment's Service names to the cluster's CoreDNS
# (kube-dns-nlb). The device profile, shared by all environments, takes this
# module's split_tunnel_include (and local_domain_fallback) outputs. With
# access, Gateway policies let only those identities use the environment
# (at the end of this file).

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

  # Identity-scoped access (var.access; see the policies below). The
  # identity expression, in Gateway's wirefilter syntax: group names are an
  # array ("any(identity.groups.name[*] in {\"finance\"})", Common network
  # policies, Check user identity), the email a string
  # ("identity.email == \"user-name@company.com\"", identity selectors
  # page; `in {...}` is the set form of the same comparison, Gateway policy
  # expressions: "in | Value is in set").
  access_on     = var.access != null
  access_groups = local.access_on ? var.access.groups : []
  access_emails = local.access_on ? var.access.emails : []
  access_identity = join(" or ", concat(
    length(local.access_groups) == 0 ? [] : ["any(identity.groups.name[*] in {${join(" ", [for g in local.access_groups : "\"${g}\""])}})"],
    length(local.access_emails) == 0 ? [] : ["identity.email in {${join(" ", [for e in local.access_emails : "\"${e}\""])}}"],
  ))
  # What access guards: the VPC ranges (pods) and the load balancer
  # (resolver) IPs, in this environment's virtual network only (Virtual
  # Network selector, net.vnet_id == "<id>"; Destination IP, net.dst.ip):
  # another environment may use the same ranges in its own network.
  access_traffic    = "net.vnet_id == \"${local.vnet_id}\" and net.dst.ip in {${join(" ", distinct(concat(var.vpc_cidrs, var.lb_ips)))}}"
  access_precedence = local.access_on ? var.access.precedence : null
  # Gateway refuses a precedence already in use.
  access_precedences = local.access_on ? concat([local.access_precedence, local.access_precedence + 1], var.resolver_policy ? [local.access_precedence + 2] : []) : []
  used_precedences   = concat([for p in var.org_gateway_policies : p.precedence], [for p in [var.resolver_policy_precedence] : p if var.resolver_policy && p != null])
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

# Identity-scoped access: who may reach this environment (var.access).
# Three Gateway policies, the pattern Cloudflare documents for restricting a
# private network to some users ("the first allows specific users to reach
# your application, and the second blocks all other traffic", Common network
# policies, Restrict access to private networks,
# https://developers.cloudflare.com/cloudflare-one/traffic-policies/network-policies/common-policies/#restrict-access-to-private-networks;
# for names, DNS policies, Restrict access to specific groups: "place the
# Allow policy above the Block policy",
# https://developers.cloudflare.com/cloudflare-one/traffic-policies/dns-policies/common-policies/#restrict-access-to-specific-groups).
#
# Order (Order of enforcement,
# https://developers.cloudflare.com/cloudflare-one/traffic-policies/order-of-enforcement/,
# cloudflare-docs partials/cloudflare-one/gateway/order-of-enforcement.mdx at
# 0320fc5): a DNS query meets "DNS policies with selectors evaluated before
# resolution" (dns.fqdn and identity are), then "Resolver policies", so the
# DNS block answers before the resolver policy is looked at; connections
# meet network policies. Within each kind "Gateway evaluates policies in
# ascending order beginning with the lowest value", "first match": the allow
# (P) comes before the block (P+1). Network policies filter only what
# Gateway proxies (Traffic settings: "Allow Secure Web Gateway to proxy
# traffic", TCP and UDP on; network policy selectors page).
#
# Provider v5.22.0 internal/services/zero_trust_gateway_policy/schema.go:
# action "allow"/"block", filters one of "dns", "l4", "dns_resolver", ...
# ("Can only contain a single value"), precedence "Lower values indicate
# higher precedence", identity and traffic wirefilter strings, enabled
# defaults to false (so set), rule_settings.block_page_enabled "Settable
# only for dns rules with action block".

resource "cloudflare_zero_trust_gateway_policy" "access_allow" {
  count       = local.access_on ? 1 : 0
  account_id  = var.account_id
  name        = "${var.env}: allow access (warpdns)"
  description = "Lets ${local.access_identity} reach the ${var.env} cluster's ranges and resolver. Managed by Terraform (warpdns)."
  enabled     = true
  action      = "allow"
  filters     = ["l4"]
  precedence  = local.access_precedence
  traffic     = local.access_traffic
  identity    = local.access_identity

  lifecycle {
    precondition {
      condition     = length(setintersection(toset(local.access_precedences), toset(local.used_precedences))) == 0
      error_message = "access.precedence: ${join(", ", local.access_precedences)} must not be in use (org_gateway_policies, resolver_policy_precedence)."
    }
  }
}

resource "cloudflare_zero_trust_gateway_policy" "access_block" {
  count       = local.access_on ? 1 : 0
  account_id  = var.account_id
  name        = "${var.env}: block everyone else (warpdns)"
  description = "Blocks everyone but ${local.access_identity} from the ${var.env} cluster's ranges and resolver. Managed by Terraform (warpdns)."
  enabled     = true
  action      = "block"
  filters     = ["l4"]
  precedence  = local.access_precedence + 1
  traffic     = local.access_traffic
}

# The names of this environment for everyone else: blocked, so they get
# Gateway's documented answer instead of a timeout (the network block would
# drop what the resolver answered). With the block page off, "Gateway will
# respond to blocked queries with an A record (IPv4) of 0.0.0.0 or an AAAA
# record (IPv6) of ::", and queries of other types with REFUSED (DNS policy
# actions, Block,
# https://developers.cloudflare.com/cloudflare-one/traffic-policies/policy-types/dns-policies/actions/#custom-block-page,
# cloudflare-docs partials/cloudflare-one/gateway/block-page-dns-records.mdx).
# tools/warp-check.sh reads that answer as "not allowed for your identity";
# test/e2e's gateway stand-in answers the same. One policy, identity
# negated ("not(identity.email == ...)", Gateway policy expressions), so
# the names of those in access go on to the organisation's later DNS
# policies and to the resolver policy as before. Only with the resolver
# policy: Local Domain Fallback queries go from the device to the load
# balancer without Gateway's DNS policies, and meet the network block.
resource "cloudflare_zero_trust_gateway_policy" "names_block" {
  count       = local.access_on && var.resolver_policy ? 1 : 0
  account_id  = var.account_id
  name        = "${var.env}: names blocked for everyone else (warpdns)"
  description = "Answers ${var.env}'s Service names with the block answer for everyone but ${local.access_identity}. Managed by Terraform (warpdns)."
  enabled     = true
  action      = "block"
  filters     = ["dns"]
  precedence  = local.access_precedence + 2
  traffic     = "dns.fqdn matches \"${local.resolver_regex}\""
  identity    = "not(${local.access_identity})"
  rule_settings = {
    block_page_enabled = false
  }
}
