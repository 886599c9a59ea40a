output "application_aud" {
  description = "The Access application audience tags, by app name (for origins that validate the Access JWT themselves)."
  value       = { for name, app in cloudflare_zero_trust_access_application.app : name => app.aud }
}

output "hostnames" {
  description = "The published hostnames, by app name."
  value       = { for name, app in var.apps : name => app.hostname }
}
