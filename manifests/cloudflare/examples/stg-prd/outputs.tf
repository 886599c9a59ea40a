output "stg_tunnel_token" {
  description = "Token for the stg cluster's cloudflared: terraform output -raw stg_tunnel_token."
  value       = module.stg.tunnel_token
  sensitive   = true
}

output "prd_tunnel_token" {
  description = "Token for the prd cluster's cloudflared: terraform output -raw prd_tunnel_token."
  value       = module.prd.tunnel_token
  sensitive   = true
}

output "resolver_policies" {
  description = "The traffic expression of each environment's resolver policy."
  value = {
    stg = module.stg.resolver_policy_traffic
    prd = module.prd.resolver_policy_traffic
  }
}

output "virtual_networks" {
  description = "Each environment's virtual network ID."
  value = {
    stg = module.stg.virtual_network_id
    prd = module.prd.virtual_network_id
  }
}
