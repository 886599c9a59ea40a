variable "account_id" {
  description = "Cloudflare account ID."
  type        = string
}

variable "zone_id" {
  description = "The zone (domain) the public hostnames are in: Cloudflare dashboard, the domain's Overview page, API section."
  type        = string
  nullable    = false
}

variable "tunnel_id" {
  description = "The tunnel whose cloudflared reaches the apps (an environment module's tunnel_id)."
  type        = string
}

variable "team_name" {
  description = "Your Zero Trust team name (the <team> of <team>.cloudflareaccess.com); cloudflared checks the Access token against it."
  type        = string
  # Required by the provider in origin_request.access
  # (internal/services/zero_trust_tunnel_cloudflared_config/schema.go, v5.22.0):
  # a null here fails at apply, so refuse it at plan.
  nullable = false
}

variable "name" {
  description = "A prefix for the policy and application names."
  type        = string
}

variable "allowed_email_domains" {
  description = "Who may open the apps: users whose identity provider email is in one of these domains."
  type        = list(string)
}

variable "apps" {
  description = "Internal web apps to publish behind Access: name => { hostname (public, in zone_id), service (what cloudflared connects to, such as http://web.platform.svc.cluster.local:80) }."
  type = map(object({
    hostname = string
    service  = string
  }))
  default = {}
}

variable "session_duration" {
  description = "How long an Access login lasts."
  type        = string
  default     = "24h"
}
