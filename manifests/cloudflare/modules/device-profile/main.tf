# The WARP device profile for the developers: the organisation's WARP setup
# with the clusters added, not replaced. One profile for all environments:
# Split Tunnel and fallback lists belong to a profile, not to an environment.
#
# Split Tunnels, Exclude mode (the default, as Cloudflare's): "All traffic
# will be sent to Cloudflare Gateway except for the IPs and domains you
# specify" (Change Split Tunnels mode,
# https://developers.cloudflare.com/cloudflare-one/team-and-resources/devices/warp/configure-warp/route-traffic/split-tunnels/).
# The profile gets the organisation's exclude list (org_exclude; Cloudflare's
# default list unless given) with the clusters' ranges taken out of it: an
# entry that holds a cluster range is replaced by the prefixes that cover the
# rest of it, as Cloudflare documents for a range inside an excluded one
# ("If using Exclude mode, delete 100.64.0.0/10 from the list and re-add
# 100.64.0.0/11 and 100.112.0.0/12", cloudflare-docs pull request 18609; the
# Add a route section's "exclude a certain specific IP range from a larger
# IP range" calculator). Everything else keeps going through WARP and Gateway.
#
# Include mode (split_tunnel_mode = "include"): "Only traffic destined to the
# IPs or domains you specify will be sent to Cloudflare Gateway. All other
# traffic will bypass Gateway" (same page): for organisations that already
# run Include mode. The clusters' ranges and *.svc.<cluster_domain> are
# appended to the organisation's include list (org_include).
#
# The provider takes one of the two lists per profile ("Both 'exclude' and
# 'include' cannot be set in the same request", listvalidator.ConflictsWith:
# provider v5.22.0
# internal/services/zero_trust_device_custom_profile/schema.go): the other
# is null.
#
# Local Domain Fallback, in both modes: the organisation's list
# (org_fallback_domains; Cloudflare's default list unless given), every entry
# kept except those that would swallow the cluster domain, plus, for plans
# without Gateway resolver policies, the entries that send each environment's
# domain to that cluster's load balancer. Why `local` goes: the WARP client
# applies Local Domain Fallback on the device before Gateway sees a query
# ("If both Local Domain Fallback and resolver policies are configured for
# the same device, Cloudflare will apply client-side Local Domain Fallback
# rules first",
# https://developers.cloudflare.com/cloudflare-one/team-and-resources/devices/warp/configure-warp/route-traffic/local-domains/),
# and the default list holds `local`: every *.svc.cluster.local name would
# go to the laptop's own resolver (its home router: NXDOMAIN) and never reach
# a resolver policy. Entries match as suffixes ("example.com is interpreted
# as *.example.com", same page).
#
# test/e2e/ldf evaluates these locals and the profile's lists with HCL and
# go-cty (the functions used here are the ones it has: go-cty's standard
# library and the cidr functions), and test/e2e routes the lab laptop by them.

locals {
  # Cloudflare's default Split Tunnel Exclude list, "Default Split Tunnel
  # entries recommended by Cloudflare" (Split Tunnels, Add a route,
  # Terraform (v5) tab, page above; cloudflare-docs
  # src/content/partials/cloudflare-one/warp/add-split-tunnels-route.mdx at
  # commit 0cfb1610350c7f898da3248d3a276d2d26a13112). What org_exclude
  # defaults to. The only copy in the repository (output
  # cloudflare_default_exclude).
  cloudflare_default_exclude = [
    "10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.168.0.0/16", "224.0.0.0/24", "240.0.0.0/4",
    "255.255.255.255/32", "fd00::/8", "fe80::/10", "ff01::/16", "ff02::/16",
    "ff03::/16", "ff04::/16", "ff05::/16",
  ]

  # Cloudflare's default Local Domain Fallback list, the one a new profile
  # starts with ("By default, Cloudflare Zero Trust excludes common top-level
  # domains, used for local resolution", Local Domain Fallback page above).
  # The names as the WARP client itself lists them, `warp-cli settings`,
  # "Fallback domains:" (output of a client with the default profile:
  # https://pastebin.com/LpzH71AB). What org_fallback_domains defaults to.
  # The only copy in the repository: test/e2e and the docs read it from here
  # (output cloudflare_default_fallback_domains).
  cloudflare_default_fallback_domains = [
    "intranet", "internal", "private", "localdomain", "domain", "lan", "home",
    "host", "corp", "local", "localhost", "home.arpa", "invalid", "test",
  ]

  include_mode = var.split_tunnel_mode == "include"

  # The clusters' ranges (the include entries' addresses) in the form the
  # prefix arithmetic below compares: base address, prefix length, family.
  # cidrhost(p, 0) is the first address of p, so
  # cidrhost("${x.base}/${n}", 0) == y.base says that x lies inside y when
  # n = y.bits <= x.bits.
  cluster_ranges = [for e in var.include : {
    base = cidrhost(e.address, 0)
    bits = parseint(split("/", e.address)[1], 10)
    v6   = length(split(":", e.address)) > 1
  } if e.address != null]

  org_exclude = var.org_exclude != null ? var.org_exclude : [
    for a in local.cloudflare_default_exclude : { address = a, host = null, description = null }
  ]
  # Per exclude entry (null for a host entry): its prefix, whether a cluster
  # range covers it (then it goes), and the cluster ranges strictly inside
  # it (then it is split).
  exclude_prefixes = [for e in local.org_exclude : e.address == null ? null : {
    base = cidrhost(e.address, 0)
    bits = parseint(split("/", e.address)[1], 10)
    v6   = length(split(":", e.address)) > 1
  }]
  exclude_covered = [for x in local.exclude_prefixes : x == null ? false : length([
    for c in local.cluster_ranges : c if c.v6 == x.v6 && c.bits <= x.bits && cidrhost("${x.base}/${c.bits}", 0) == c.base
  ]) > 0]
  # Splitting an entry: walk from the entry down to each cluster range
  # inside it. The prefixes on those paths (not inside a cluster range)
  # hold cluster addresses; each of their two halves that is neither on a
  # path nor inside a cluster range holds none, and those halves together
  # are exactly the entry minus the clusters.
  exclude_paths = [for x in local.exclude_prefixes : x == null ? [] : [
    for n in distinct(flatten([
      for c in local.cluster_ranges : [
        for l in range(x.bits, c.bits) : { base = cidrhost("${c.base}/${l}", 0), bits = l }
      ] if c.v6 == x.v6 && c.bits > x.bits && cidrhost("${c.base}/${x.bits}", 0) == x.base
    ])) : n
    if length([for c in local.cluster_ranges : c if c.v6 == x.v6 && c.bits <= n.bits && cidrhost("${n.base}/${c.bits}", 0) == c.base]) == 0
  ]]
  exclude_remainders = [for i, x in local.exclude_prefixes : [
    for half in flatten([for n in local.exclude_paths[i] : [
      for k in [0, 1] : { base = cidrhost(cidrsubnet("${n.base}/${n.bits}", 1, k), 0), bits = n.bits + 1 }
    ]]) : "${half.base}/${half.bits}"
    if !contains(local.exclude_paths[i], half) && length([
      for c in local.cluster_ranges : c if c.v6 == x.v6 && c.bits <= half.bits && cidrhost("${half.base}/${c.bits}", 0) == c.base
    ]) == 0
  ]]
  split_tunnel_exclude = flatten([for i, e in local.org_exclude : (
    e.address == null ? [e] :
    local.exclude_covered[i] ? [] :
    length(local.exclude_paths[i]) == 0 ? [e] :
    [for r in local.exclude_remainders[i] : {
      address     = r
      host        = null
      description = "${e.address} without the cluster ranges (warpdns)"
    }]
  )])

  # Include mode: the organisation's entries, then ours that it lacks.
  warpdns_include = concat(var.include, [{
    address     = null
    host        = "*.svc.${var.cluster_domain}"
    description = "Kubernetes Service names (warpdns)"
  }])
  split_tunnel_include = concat(var.org_include, [
    for e in local.warpdns_include : e
    if !contains([for o in var.org_include : coalesce(o.address, o.host)], coalesce(e.address, e.host))
  ])

  org_fallback_domains = var.org_fallback_domains != null ? var.org_fallback_domains : [
    for d in local.cloudflare_default_fallback_domains : { suffix = d, dns_server = null, description = "Cloudflare default, kept (warpdns)" }
  ]
  # Kept: every entry except the cluster domain and its suffixes (`local`
  # for cluster.local). Without a dns_server an entry goes to the resolver
  # the device used before WARP started, as by default (provider v5.22.0
  # internal/services/zero_trust_device_custom_profile_local_domain_fallback/schema.go:
  # dns_server optional).
  kept_fallback_domains = [
    for d in local.org_fallback_domains : d
    if !(d.suffix == var.cluster_domain || trimsuffix(var.cluster_domain, ".${d.suffix}") != var.cluster_domain)
  ]
  fallback_domains = concat(local.kept_fallback_domains, var.local_domain_fallback)
}

resource "cloudflare_zero_trust_device_custom_profile" "this" {
  account_id  = var.account_id
  name        = var.name
  description = "Cluster VPCs and Service names through WARP (warpdns). Managed by Terraform."
  match       = var.match
  precedence  = var.precedence
  enabled     = true
  exclude     = local.include_mode ? null : local.split_tunnel_exclude
  include     = local.include_mode ? local.split_tunnel_include : null
}

# The profile's whole fallback list, in both modes: the resource's domains
# (a required set, provider v5.22.0
# internal/services/zero_trust_device_custom_profile_local_domain_fallback/schema.go)
# are the list the devices of this profile get; hence the organisation's
# entries as an input.
resource "cloudflare_zero_trust_device_custom_profile_local_domain_fallback" "this" {
  account_id = var.account_id
  policy_id  = cloudflare_zero_trust_device_custom_profile.this.policy_id
  domains    = local.fallback_domains
}
