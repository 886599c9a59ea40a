output "policy_id" {
  description = "The device profile's policy ID."
  value       = cloudflare_zero_trust_device_custom_profile.this.policy_id
}

output "cloudflare_default_fallback_domains" {
  description = "Cloudflare's default Local Domain Fallback list (what a profile starts with), for comparison: it holds `local`, which would send every *.svc.cluster.local name to the laptop's own resolver."
  value       = local.cloudflare_default_fallback_domains
}

output "fallback_domains" {
  description = "The Local Domain Fallback list this profile gets: Cloudflare's default without the cluster domain's suffixes, plus local_domain_fallback."
  value       = local.fallback_domains
}
