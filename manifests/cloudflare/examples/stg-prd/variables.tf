variable "account_id" {
  description = "Cloudflare account ID."
  type        = string
}

variable "stg_lb_ips" {
  description = "stg cluster: kube-dns-nlb's fixed IPs, IPv4 and/or IPv6 (manifests/overlays/eks-stg/kube-dns-nlb.yaml, aws-load-balancer-private-ipv4-addresses)."
  type        = list(string)
}

variable "stg_vpc_cidrs" {
  description = "stg cluster: the VPC CIDR(s), IPv4 and/or IPv6."
  type        = list(string)
}

variable "prd_lb_ips" {
  description = "prd cluster: kube-dns-nlb's fixed IPs, IPv4 and/or IPv6 (manifests/overlays/eks-prd/kube-dns-nlb.yaml)."
  type        = list(string)
}

variable "prd_vpc_cidrs" {
  description = "prd cluster: the VPC CIDR(s), IPv4 and/or IPv6."
  type        = list(string)
}

variable "stg_access" {
  description = "Who may use stg (modules/environment's access): { groups, emails, precedence }. null: everyone in the developers' profile."
  type = object({
    groups     = optional(list(string), [])
    emails     = optional(list(string), [])
    precedence = number
  })
  default = null
}

variable "prd_access" {
  description = "Who may use prd, as stg_access. null: everyone in the developers' profile."
  type = object({
    groups     = optional(list(string), [])
    emails     = optional(list(string), [])
    precedence = number
  })
  default = null
}

variable "org_gateway_policies" {
  description = "The organisation's own Gateway policies (modules/environment's org_gateway_policies), to keep the access policies' precedences apart from theirs."
  type = list(object({
    name       = string
    filters    = list(string)
    action     = string
    precedence = number
    traffic    = optional(string, "")
    identity   = optional(string, "")
  }))
  default = []
}

variable "resolver_policies" {
  description = "true on Enterprise plans: one Gateway resolver policy per environment (the names ENV-SVC.NS.svc.cluster.local). false: Local Domain Fallback with ldf_domain instead."
  type        = bool
  default     = true
}

variable "ldf_domain" {
  description = "For Local Domain Fallback (resolver_policies = false): the parent domain of envalias' domain form, e.g. k8s.example.com (stg answers SVC.NS.stg.k8s.example.com). Both environments then share one virtual network, so their VPC CIDRs must not overlap."
  type        = string
  default     = null
  validation {
    condition     = var.ldf_domain == null || can(regex("^([a-z0-9-]+\\.)+[a-z0-9-]+$", var.ldf_domain))
    error_message = "ldf_domain must be a domain name such as k8s.example.com."
  }
}

variable "device_match" {
  description = "Which WARP devices get the developer profile (its Split Tunnels and fallback list), e.g. any(identity.groups.name[*] in {\"developers\"})."
  type        = string
}

variable "split_tunnel_mode" {
  description = "The developers' profile's Split Tunnels mode: \"exclude\" (Cloudflare's default; everything through WARP but org_exclude less the clusters' VPCs) or \"include\" (org_include plus the VPCs). Use the mode the organisation already uses."
  type        = string
  default     = "exclude"
}

variable "org_exclude" {
  description = "The organisation's Split Tunnel Exclude list (Exclude mode), as the device-profile module takes it; null: Cloudflare's default list."
  type = list(object({
    address     = optional(string)
    host        = optional(string)
    description = optional(string)
  }))
  default = null
}

variable "org_include" {
  description = "The organisation's Split Tunnel Include list (Include mode)."
  type = list(object({
    address     = optional(string)
    host        = optional(string)
    description = optional(string)
  }))
  default = []
}

variable "org_fallback_domains" {
  description = "The organisation's Local Domain Fallback list, kept but for `local`; null: Cloudflare's default list."
  type = list(object({
    suffix      = string
    dns_server  = optional(list(string))
    description = optional(string)
  }))
  default = null
}

variable "zone_id" {
  description = "Outward example only: the zone of the public app hostnames (null: no public apps)."
  type        = string
  default     = null
}

variable "team_name" {
  description = "Outward example only: your Zero Trust team name (<team>.cloudflareaccess.com)."
  type        = string
  default     = null
}

variable "allowed_email_domains" {
  description = "Outward example only: who may open the public apps."
  type        = list(string)
  default     = []
}

variable "stg_public_apps" {
  description = "Outward example only: internal web apps of the stg cluster to publish behind Access, name => { hostname, service }."
  type = map(object({
    hostname = string
    service  = string
  }))
  default = {}
}
