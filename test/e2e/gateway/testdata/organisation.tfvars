# An organisation's own Gateway policies, as modules/environment's
# org_gateway_policies takes them: what the access policies must be placed
# among. Regular expressions are in wirefilter's literal form (a backslash
# kept with the character after it).
org_gateway_policies = [
  {
    name = "Block malware domains", filters = ["dns"], action = "block", precedence = 100,
    traffic = "dns.fqdn matches \"(^|\\.)malware\\.example$\""
  },
  {
    name = "Block the partner range", filters = ["l4"], action = "block", precedence = 200,
    traffic = "net.dst.ip in {198.51.100.0/24}"
  },
  # Engineering may reach the office's private ranges...
  {
    name = "Engineering to the office network", filters = ["l4"], action = "allow", precedence = 20000,
    traffic  = "net.dst.ip in {10.0.0.0/8}"
    identity = "any(identity.groups.name[*] in {\"engineering\"})"
  },
  # ...and nobody else any private range.
  {
    name = "Nobody else to private ranges", filters = ["l4"], action = "block", precedence = 30000,
    traffic = "net.dst.ip in {10.0.0.0/8 172.16.0.0/12 192.168.0.0/16}"
  },
]
