# An organisation that already runs WARP, as the device-profile module's
# org_* inputs take it: the lists of the profile its developers get today.
# TestDeviceProfileKeepsOrganisation applies the module to it.

# Exclude mode: a trimmed version of Cloudflare's default list, plus the
# organisation's own entries. 10.1.2.0/24 (a lab subnet) lies inside a
# cluster range, 10.0.0.0/8 and fd00::/8 hold cluster ranges.
org_exclude = [
  { address = "10.0.0.0/8" },
  { address = "172.16.0.0/12" },
  { address = "192.168.0.0/16", description = "Home networks" },
  { address = "169.254.0.0/16", description = "DHCP Unspecified" },
  { address = "224.0.0.0/24" },
  { address = "255.255.255.255/32", description = "DHCP Broadcast" },
  { address = "fd00::/8" },
  { address = "fe80::/10", description = "IPv6 Link Local" },
  { address = "10.1.2.0/24", description = "Lab printers" },
  { address = "203.0.113.0/24", description = "Partner network (own VPN)" },
  { host = "vpn.example.com", description = "Third-party VPN endpoint" },
]

# Include mode: the organisation's private networks.
org_include = [
  { address = "10.9.0.0/16", description = "Corporate network" },
  { address = "fd00:9::/48", description = "Corporate network (IPv6)" },
  { host = "intranet.example.com", description = "Intranet" },
]

# Local Domain Fallback: Cloudflare's default names the organisation kept,
# and its Active Directory domain.
org_fallback_domains = [
  { suffix = "intranet" },
  { suffix = "internal" },
  { suffix = "lan" },
  { suffix = "home.arpa" },
  { suffix = "local" },
  { suffix = "localhost" },
  { suffix = "corp.example.com", dns_server = ["10.9.0.53", "10.9.1.53"], description = "Active Directory" },
]
