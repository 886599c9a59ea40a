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
  description = "What must go through WARP: the environments' split_tunnel_include outputs, concatenated (their VPC and pod ranges). Exclude mode: these ranges are taken out of org_exclude. Include mode: these entries and *.svc.<cluster_domain> are appended to org_include."
  type = list(object({
    address     = optional(string)
    host        = optional(string)
    description = string
  }))
}

variable "split_tunnel_mode" {
  description = "\"exclude\" (Cloudflare's default: everything through WARP and Gateway except org_exclude, less the clusters' ranges) or \"include\" (only org_include and the clusters through WARP). Use the mode the organisation's profiles already use."
  type        = string
  default     = "exclude"
  validation {
    condition     = contains(["exclude", "include"], var.split_tunnel_mode)
    error_message = "split_tunnel_mode must be \"exclude\" or \"include\"."
  }
}

variable "org_exclude" {
  description = "Exclude mode: the organisation's Split Tunnel Exclude list (copy it from the profile the developers' devices get today, or from the default profile: Zero Trust > Settings > WARP Client > the profile > Split Tunnels > Manage). null: Cloudflare's default list (output cloudflare_default_exclude). Every entry is kept, except that the clusters' ranges are taken out: an entry covering a cluster range is replaced by the prefixes covering the rest of it, one a cluster range covers goes."
  type = list(object({
    address     = optional(string)
    host        = optional(string)
    description = optional(string)
  }))
  default = null
  validation {
    condition     = alltrue([for e in var.org_exclude == null ? [] : var.org_exclude : (e.address == null) != (e.host == null) && can(cidrhost(coalesce(e.address, "0.0.0.0/0"), 0))])
    error_message = "Each org_exclude entry has either an address (a CIDR such as 10.0.0.0/8) or a host."
  }
}

variable "org_include" {
  description = "Include mode: the organisation's Split Tunnel Include list; the clusters' entries are appended (those it already has are not repeated)."
  type = list(object({
    address     = optional(string)
    host        = optional(string)
    description = optional(string)
  }))
  default  = []
  nullable = false
}

variable "org_fallback_domains" {
  description = "The organisation's Local Domain Fallback list (Zero Trust > Settings > WARP Client > the profile > Local Domain Fallback; or `warp-cli settings list`, older clients `warp-cli settings`, \"Fallback domains:\"). null: Cloudflare's default list (output cloudflare_default_fallback_domains). Every entry is kept, with its DNS servers, except the cluster domain and its suffixes (`local` for cluster.local), which would keep the Service names on the laptop."
  type = list(object({
    suffix      = string
    dns_server  = optional(list(string))
    description = optional(string)
  }))
  default = null
}

variable "cluster_domain" {
  description = "The clusters' DNS domain. In Include mode *.svc.<cluster_domain> is included by name too, so the IPs those names resolve to go through WARP even outside the listed ranges. Fallback entries equal to it or a suffix of it (local) are left out of the fallback list."
  type        = string
  default     = "cluster.local"
}

variable "local_domain_fallback" {
  description = "Local Domain Fallback entries (the environments' local_domain_fallback outputs, nulls removed), for plans without resolver policies. Added to org_fallback_domains minus the cluster domain's suffixes (`local`); the module always manages the profile's whole fallback list."
  type = list(object({
    suffix      = string
    dns_server  = list(string)
    description = string
  }))
  default = []
}
