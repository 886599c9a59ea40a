output "tunnel_id" {
  description = "The tunnel's ID."
  value       = cloudflare_zero_trust_tunnel_cloudflared.this.id
}

output "tunnel_name" {
  description = "The tunnel's name."
  value       = cloudflare_zero_trust_tunnel_cloudflared.this.name
}

output "tunnel_token" {
  description = "The token cloudflared runs with (the Secret cloudflared-token in manifests/cloudflared). Keep it secret: it lets anyone run a connector of this tunnel."
  value       = data.cloudflare_zero_trust_tunnel_cloudflared_token.this.token
  sensitive   = true
}

output "virtual_network_id" {
  description = "The virtual network of this environment's routes and resolver."
  value       = local.vnet_id
}

output "resolver_policy_traffic" {
  description = "The resolver policy's traffic expression (null without a resolver policy)."
  value       = var.resolver_policy ? cloudflare_zero_trust_gateway_policy.resolver[0].traffic : null
}

output "split_tunnel_include" {
  description = "Split Tunnel include entries for this environment: its VPC ranges (pod IPs, the load balancer), so that WARP sends them to Cloudflare."
  value = [for cidr in var.vpc_cidrs : {
    address     = cidr
    description = "${var.env}: cluster VPC (warpdns)"
  }]
}

output "local_domain_fallback" {
  description = "The Local Domain Fallback entry for this environment (null without ldf_domain): <env>.<ldf_domain> resolved by the cluster's load balancer."
  value = var.ldf_domain == null ? null : {
    suffix      = "${var.env}.${var.ldf_domain}"
    dns_server  = var.lb_ips
    description = "${var.env} cluster Services (warpdns)"
  }
}

output "access_policies" {
  description = "The environment's Gateway access policies (empty without access): name, filters, action, precedence, traffic and identity, in precedence order."
  value = [for p in concat(cloudflare_zero_trust_gateway_policy.access_allow, cloudflare_zero_trust_gateway_policy.access_block, cloudflare_zero_trust_gateway_policy.names_block) : {
    name = p.name, filters = p.filters, action = p.action, precedence = p.precedence, traffic = p.traffic, identity = p.identity
  }]
}
