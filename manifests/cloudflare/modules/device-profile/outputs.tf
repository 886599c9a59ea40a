output "policy_id" {
  description = "The device profile's policy ID."
  value       = cloudflare_zero_trust_device_custom_profile.this.policy_id
}

output "split_tunnel_mode" {
  description = "The profile's Split Tunnels mode: exclude or include."
  value       = var.split_tunnel_mode
}

output "split_tunnel" {
  description = "The profile's Split Tunnel list: in Exclude mode org_exclude without the clusters' ranges, in Include mode org_include plus the clusters' entries."
  value       = local.include_mode ? local.split_tunnel_include : local.split_tunnel_exclude
}

output "cloudflare_default_exclude" {
  description = "Cloudflare's default Split Tunnel Exclude list, what org_exclude defaults to."
  value       = local.cloudflare_default_exclude
}

output "cloudflare_default_fallback_domains" {
  description = "Cloudflare's default Local Domain Fallback list (what a profile starts with, and what org_fallback_domains defaults to), for comparison: it holds `local`, which would send every *.svc.cluster.local name to the laptop's own resolver."
  value       = local.cloudflare_default_fallback_domains
}

output "fallback_domains" {
  description = "The Local Domain Fallback list this profile gets: org_fallback_domains without the cluster domain's suffixes, plus local_domain_fallback."
  value       = local.fallback_domains
}
