variable "account_id" {
  description = "Cloudflare account ID (Zero Trust dashboard, or the URL of any dashboard page: dash.cloudflare.com/<account_id>/...)."
  type        = string
}

variable "env" {
  description = "Environment name, as in the cluster's Corefile (`envalias stg`) and in the names developers type (stg-api.platform.svc.cluster.local). A DNS label."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", var.env))
    error_message = "env must be a lower-case DNS label, such as stg or prd."
  }
}

variable "lb_ips" {
  description = "The fixed private IPs of the cluster's kube-dns-nlb load balancer, IPv4, IPv6 or both (on EKS: aws-load-balancer-private-ipv4-addresses, one per subnet; on a dual-stack or IPv6 Service also its fixed IPv6 addresses). Gateway sends each matching query to one of them; IPv6 ones go to the resolver policy's dns_resolvers.ipv6."
  type        = list(string)
  validation {
    condition     = length(var.lb_ips) > 0 && alltrue([for ip in var.lb_ips : can(cidrhost("${ip}/${strcontains(ip, ":") ? 128 : 32}", 0))])
    error_message = "lb_ips must be a non-empty list of IPv4 or IPv6 addresses."
  }
}

variable "lb_port" {
  description = "The port of kube-dns-nlb (53; it forwards to the pods' VPC-facing listener 5353)."
  type        = number
  default     = 53
}

variable "vpc_cidrs" {
  description = "The cluster's private ranges to route through its tunnel, IPv4 and/or IPv6: the VPC CIDR (on EKS it holds the pod IPs and lb_ips; on an IPv6 or dual-stack VPC add its IPv6 CIDR too). Add the Pod CIDR if pods are not VPC addresses (bare metal). Each becomes a tunnel route and a Split Tunnel include entry."
  type        = list(string)
  validation {
    # cidrhost takes IPv4 and IPv6 prefixes (cidrnetmask only IPv4).
    condition     = length(var.vpc_cidrs) > 0 && alltrue([for c in var.vpc_cidrs : can(cidrhost(c, 0))])
    error_message = "vpc_cidrs must be a non-empty list of IPv4 or IPv6 CIDRs, such as 10.0.0.0/16 or fd00:10::/56."
  }
}

variable "cluster_domain" {
  description = "The cluster's DNS domain (kubelet --cluster-domain)."
  type        = string
  default     = "cluster.local"
}

variable "virtual_network_id" {
  description = "Put the routes in this existing virtual network instead of creating one named <env>-vpc. Environments may share one when their VPC CIDRs do not overlap (the Local Domain Fallback path needs that, see README.md)."
  type        = string
  default     = null
}

variable "tunnel_name" {
  description = "Name of the tunnel; default <env>-warpdns."
  type        = string
  default     = null
}

variable "resolver_policy" {
  description = "Create the Gateway resolver policy (an Enterprise feature). false: use Local Domain Fallback instead (ldf_domain), on any plan."
  type        = bool
  default     = true
}

variable "resolver_policy_precedence" {
  description = "Precedence of the resolver policy among the account's Gateway resolver policies (lower runs first; the first match wins). Must be unique; leave room between environments."
  type        = number
  default     = null
}

variable "resolver_regex" {
  description = "Override the names the resolver policy sends to this cluster (a Rust regular expression on dns.fqdn). Default: ENV-SVC.NS.svc.<cluster_domain> and the SRV names and targets below it."
  type        = string
  default     = null
}

variable "ldf_domain" {
  description = "For Local Domain Fallback (plans without resolver policies): the parent domain of envalias' domain form, such as k8s.example.com; this environment then answers SVC.NS.<env>.<ldf_domain>. The cluster's Corefile must say `envalias <env> { domain <ldf_domain> }`."
  type        = string
  default     = null
}

variable "access" {
  description = <<-EOT
    Who may use this environment: resolve its names and reach its VPC ranges and load balancer. null (the default): everyone whose device gets the developers' profile, as before, and no Gateway policies are created. Otherwise:
    - groups: IdP group names (Gateway's User Group Names, identity.groups.name),
    - emails: user emails (User Email, identity.email), at least one of the two;
    - precedence: where this environment's Gateway policies go among the account's (P: network allow for these identities, P+1: network block for everyone else, P+2: the DNS block of its names for everyone else). Gateway evaluates each kind of policy in ascending precedence and the first Allow or Block that matches decides: put P after the organisation's policies that must apply to everyone (security, posture blocks) and before any that allow wider access to these ranges (org_gateway_policies), and leave room between environments (stg 10000, prd 10010).
  EOT
  type = object({
    groups     = optional(list(string), [])
    emails     = optional(list(string), [])
    precedence = number
  })
  default = null
  validation {
    condition     = var.access == null ? true : length(var.access.groups) + length(var.access.emails) > 0 && alltrue([for s in concat(var.access.groups, var.access.emails) : !strcontains(s, "\"") && !strcontains(s, "\\")])
    error_message = "access needs at least one group or email, none with a quote or backslash in it."
  }
}

variable "org_gateway_policies" {
  description = "The organisation's own Gateway policies (DNS, network and resolver; those not managed by this module), as the dashboard or API lists them: name, filters ([\"dns\"], [\"l4\"] or [\"dns_resolver\"]), action, precedence, traffic and identity expressions. The module checks that its precedences are not in use by them (Cloudflare: a precedence may be set to any value not already in use); docs/deploy.md says how to place access.precedence among them."
  type = list(object({
    name       = string
    filters    = list(string)
    action     = string
    precedence = number
    traffic    = optional(string, "")
    identity   = optional(string, "")
  }))
  default  = []
  nullable = false
}
