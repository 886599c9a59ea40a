variable "account_id" {
  description = "Cloudflare account ID."
  type        = string
}

variable "name" {
  description = "Name of the device profile."
  type        = string
  default     = "Developers (warpdns)"
}

variable "match" {
  description = "Which devices get this profile, a wirefilter expression such as any(identity.groups.name[*] in {\"developers\"}) or identity.email matches \".*@example.com\"."
  type        = string
}

variable "precedence" {
  description = "Precedence among the account's custom device profiles (lower first)."
  type        = number
  default     = 100
}

variable "include" {
  description = "Split Tunnel include entries: the environments' split_tunnel_include outputs, concatenated. In Include mode only these go through WARP."
  type = list(object({
    address     = optional(string)
    host        = optional(string)
    description = string
  }))
}

variable "cluster_domain" {
  description = "The clusters' DNS domain; *.svc.<cluster_domain> is included by name too, so the IPs those names resolve to go through WARP even outside the listed ranges. Default fallback entries equal to it or a suffix of it (local) are left out of the fallback list."
  type        = string
  default     = "cluster.local"
}

variable "local_domain_fallback" {
  description = "Local Domain Fallback entries (the environments' local_domain_fallback outputs, nulls removed), for plans without resolver policies. Added to Cloudflare's default list minus the cluster domain's suffixes (`local`); the module always manages the profile's whole fallback list."
  type = list(object({
    suffix      = string
    dns_server  = list(string)
    description = string
  }))
  default = []
}
