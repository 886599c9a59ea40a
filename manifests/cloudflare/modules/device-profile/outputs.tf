output "policy_id" {
  description = "The device profile's policy ID."
  value       = cloudflare_zero_trust_device_custom_profile.this.policy_id
}
