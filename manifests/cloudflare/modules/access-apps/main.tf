# The outward path of the story: internal web apps published through the
# cluster's tunnel, each behind Cloudflare Access, instead of a load balancer
# and Basic Auth per app.
#
# Order matters, and is enforced with depends_on: the Access policy, then the
# Access application (the policy in front of the hostname), then the tunnel
# configuration (the route from the hostname to the app), then the DNS record
# (the hostname itself). A tunnel route or a DNS record that exists before its
# Access application is reachable without authentication. Terraform destroys
# in the reverse order: the hostname disappears before its protection.
#
# Defense in depth: cloudflared itself also requires a valid Access token for
# the application's audience (origin_request.access), so a hostname that
# somehow skips Access is refused at the tunnel.

resource "cloudflare_zero_trust_access_policy" "allow" {
  account_id = var.account_id
  name       = "${var.name}: allow ${join(", ", var.allowed_email_domains)}"
  decision   = "allow"
  include = [for domain in var.allowed_email_domains : {
    email_domain = { domain = domain }
  }]
}

resource "cloudflare_zero_trust_access_application" "app" {
  for_each         = var.apps
  account_id       = var.account_id
  name             = "${var.name}: ${each.key}"
  domain           = each.value.hostname
  type             = "self_hosted"
  session_duration = var.session_duration
  policies = [{
    id         = cloudflare_zero_trust_access_policy.allow.id
    precedence = 1
  }]

  depends_on = [cloudflare_zero_trust_access_policy.allow]
}

resource "cloudflare_zero_trust_tunnel_cloudflared_config" "this" {
  count      = length(var.apps) > 0 ? 1 : 0
  account_id = var.account_id
  tunnel_id  = var.tunnel_id
  config = {
    ingress = concat(
      [for name, app in var.apps : {
        hostname = app.hostname
        service  = app.service
        origin_request = {
          access = {
            required  = true
            team_name = var.team_name
            aud_tag   = [cloudflare_zero_trust_access_application.app[name].aud]
          }
        }
      }],
      # The last rule catches everything else.
      [{ service = "http_status:404" }],
    )
  }

  depends_on = [cloudflare_zero_trust_access_application.app]
}

resource "cloudflare_dns_record" "app" {
  for_each = var.apps
  zone_id  = var.zone_id
  name     = each.value.hostname
  type     = "CNAME"
  content  = "${var.tunnel_id}.cfargotunnel.com"
  proxied  = true
  ttl      = 1 # automatic, as for every proxied record
  comment  = "${var.name}: ${each.key}, behind Access (warpdns)"

  depends_on = [cloudflare_zero_trust_tunnel_cloudflared_config.this]
}
