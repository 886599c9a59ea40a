#!/usr/bin/env bash
# warp-check.sh: from a laptop with Cloudflare WARP on, check with dig that a
# Kubernetes Service resolves, per environment, the way developers use it:
#
#   1. through the system resolver (WARP -> Gateway resolver policy -> tunnel
#      -> the cluster's kube-dns-nlb), asked with dig and, where the tools
#      exist, the way browsers ask it: getaddrinfo (getent ahosts, Linux),
#      systemd-resolved (resolvectl query), mDNSResponder (dscacheutil, macOS);
#   2. directly against the load balancer's fixed IP, over UDP and over TCP
#      (WARP Split Tunnel -> tunnel route -> kube-dns-nlb).
#
# Each check asks for A and AAAA records; addresses may be IPv4 or IPv6.
#
# When the system resolver fails (NXDOMAIN, timeout) for a name under one of
# the device's Local Domain Fallback domains while the Gateway path answers,
# it says so and prints the fix: WARP keeps such names on the laptop, before
# any resolver policy (Cloudflare's default list holds `local`). The system
# resolver is the WARP client's DNS proxy, which sends Gateway over DoH only
# what Local Domain Fallback does not keep ("Your Local Domain Fallback
# configuration determines which DNS requests are sent to Gateway via DoH",
# https://developers.cloudflare.com/cloudflare-one/team-and-resources/devices/warp/configure-warp/route-traffic/warp-architecture/;
# "Cloudflare will apply client-side Local Domain Fallback rules first",
# .../route-traffic/local-domains/). The Gateway path to compare with is the
# load balancer the resolver policy forwards to, unchanged (or -g).
#
# A name that dig resolves and the system resolver does not (what a browser
# sees) is reported as such: on Linux, nss-mdns and systemd-resolved keep
# .local names on multicast DNS and never ask the WARP proxy; macOS's
# mDNSResponder asks unicast DNS as well for names with two or more labels
# before .local, as ours are. An answer that is a Gateway DNS Block policy's
# (0.0.0.0 and ::, or the block page's addresses) is "not allowed for your
# identity": the environment's access list, not the resolver policy.
#
# One line per check, PASS or FAIL; a failure says its likely cause. Exit
# status 0 when every check passed, 1 otherwise, 2 on a usage error. Works
# with the bash 3.2 of macOS; needs only dig.
#
# Examples (docs/deploy.md, "Verify"):
#   tools/warp-check.sh api.platform stg=10.0.12.53 prd=10.1.12.53
#   tools/warp-check.sh api.platform stg=[fd00:ec2::53]:53   # an IPv6 load balancer
#   tools/warp-check.sh -d k8s.example.com api.platform stg=10.0.12.53   # Local Domain Fallback
#   tools/warp-check.sh -r 127.0.0.1:1054 -s 10.96.0.0/16 api.platform stg=127.0.0.1:1054   # make run

set -u

usage() {
	cat <<'EOF'
usage: warp-check.sh [options] SERVICE.NAMESPACE ENV[=LB_IP[:PORT]]...

  SERVICE.NAMESPACE  a Service to probe, e.g. api.platform (it needs ready endpoints)
  ENV=LB_IP[:PORT]   an environment and its kube-dns-nlb IP (port 53 by default);
                     IPv6 as LB_IP or [LB_IP]:PORT; ENV alone checks only the resolver path

options:
  -d DOMAIN    envalias' domain form (Local Domain Fallback): probe
               SERVICE.NAMESPACE.ENV.DOMAIN instead of ENV-SERVICE.NAMESPACE.svc.ZONE
  -z ZONE      the cluster domain (default cluster.local)
  -r IP[:PORT] ask this resolver with dig instead of the system resolver for check 1
  -s CIDR      a Service CIDR of the clusters, IPv4 or IPv6; answers inside it mean
               ClusterIPs (repeatable; default: kubeadm's 10.96.0.0/12, EKS's
               10.100.0.0/16 and 172.20.0.0/16, GKE's 34.118.224.0/20, AKS's
               10.0.0.0/16 and fd12:3456:789a:1::/108)
  -t SECONDS   how long to wait for each answer (default 3)
  -f DOMAINS   the device profile's Local Domain Fallback domains, comma separated
               (default: read from `warp-cli settings list`, "Fallback domains:")
  -g IP[:PORT] the Gateway path to compare the resolver with: a resolver that answers
               as Gateway's resolver policy does (default: ENV's load balancer, the
               server the policy forwards to)
  -h           this help
EOF
}

DIG=${DIG:-dig}
WARPCLI=${WARPCLI:-warp-cli}
# The system resolver as programs other than dig use it.
GETENT=${GETENT:-getent}
RESOLVECTL=${RESOLVECTL:-resolvectl}
DSCACHEUTIL=${DSCACHEUTIL:-dscacheutil}
NSSWITCH_CONF=${NSSWITCH_CONF:-/etc/nsswitch.conf}
FALLBACK=""
FALLBACK_SET=""
GATEWAY=""
ZONE=cluster.local
DOMAIN=""
RESOLVER=""
TIMEOUT=3
SERVICE_CIDRS=""
# Each platform's default Service range, used when no -s is given:
#   kubeadm: DefaultServicesSubnet = "10.96.0.0/12" (k8s.io/kubernetes v1.37.2,
#     cmd/kubeadm/app/apis/kubeadm/v1beta4/defaults.go);
#   EKS: "If you don't specify a block, Kubernetes assigns addresses from either
#     the 10.100.0.0/16 or 172.20.0.0/16 CIDR blocks"
#     (https://docs.aws.amazon.com/eks/latest/APIReference/API_KubernetesNetworkConfigRequest.html);
#     an EKS IPv6 cluster takes its Services from fc00::/7 with no fixed range:
#     give it with -s (aws eks describe-cluster ... serviceIpv6Cidr);
#   GKE: "GKE Autopilot clusters running version 1.27 and later, and GKE
#     Standard clusters running version 1.29 and later ... 34.118.224.0/20 by
#     default" (https://cloud.google.com/kubernetes-engine/docs/concepts/alias-ips);
#   AKS: --service-cidrs "If no values are supplied, the default value
#     10.0.0.0/16,fd12:3456:789a:1::/108 is used"
#     (https://learn.microsoft.com/azure/aks/azure-cni-overlay, Dual-stack).
# AKS's 10.0.0.0/16 is a common VPC range too: on other platforms pods there
# read as ClusterIPs until -s names the clusters' own range.
DEFAULT_SERVICE_CIDRS="10.96.0.0/12 10.100.0.0/16 172.20.0.0/16 34.118.224.0/20 10.0.0.0/16 fd12:3456:789a:1::/108"

while getopts "d:z:r:s:t:f:g:h" opt; do
	case $opt in
	f) FALLBACK=$(printf '%s' "$OPTARG" | tr ',' ' '); FALLBACK_SET=1 ;;
	g) GATEWAY=$OPTARG ;;
	d) DOMAIN=${OPTARG%.} ;;
	z) ZONE=${OPTARG%.} ;;
	r) RESOLVER=$OPTARG ;;
	s) SERVICE_CIDRS="$SERVICE_CIDRS $OPTARG" ;;
	t) TIMEOUT=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
SERVICE_CIDRS_GIVEN=$SERVICE_CIDRS
[ -n "$SERVICE_CIDRS" ] || SERVICE_CIDRS=$DEFAULT_SERVICE_CIDRS

if [ $# -lt 2 ]; then
	usage >&2
	exit 2
fi
TARGET=$1
shift
case $TARGET in
*.*.* | .* | *.) echo "warp-check: SERVICE.NAMESPACE expected, got '$TARGET'" >&2; exit 2 ;;
*.*) ;;
*) echo "warp-check: SERVICE.NAMESPACE expected, got '$TARGET'" >&2; exit 2 ;;
esac
SERVICE=${TARGET%%.*}
NAMESPACE=${TARGET#*.}
case $TIMEOUT in
'' | *[!0-9]*) echo "warp-check: -t wants whole seconds" >&2; exit 2 ;;
esac
if ! command -v "$DIG" >/dev/null 2>&1; then
	echo "warp-check: dig not found (macOS: included; Debian/Ubuntu: apt-get install dnsutils)" >&2
	exit 2
fi

# --- addresses -------------------------------------------------------------

is_ipv4() {
	local IFS=. octet
	case $1 in *[!0-9.]* | '' | .* | *. | *..*) return 1 ;; esac
	# shellcheck disable=SC2086 # split on the dots on purpose
	set -- $1
	[ $# -eq 4 ] || return 1
	for octet in "$@"; do
		[ "$octet" -le 255 ] || return 1
	done
}

ip2int() {
	local IFS=.
	# shellcheck disable=SC2086 # split on the dots on purpose
	set -- $1
	echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4))
}

# ipv6_groups ADDR: prints the eight 16-bit groups of an IPv6 address as
# decimal numbers, or fails if ADDR is not one (forms with an embedded IPv4
# address are not supported).
ipv6_groups() {
	local addr=$1 head tail g n=0 zeros out=""
	case $addr in
	'' | *[!0-9a-fA-F:]* | *:::* | *::*::*) return 1 ;;
	:[!:]* | *[!:]:) return 1 ;; # a lone colon at either end
	esac
	case $addr in
	*::*) head=${addr%%::*} tail=${addr#*::} ;;
	*) head=$addr tail="" ;;
	esac
	for g in $(printf '%s' "$head" | tr ':' ' ') $(printf '%s' "$tail" | tr ':' ' '); do
		case $g in ?????*) return 1 ;; esac
		n=$((n + 1))
	done
	case $addr in
	*::*) [ $n -le 7 ] || return 1 ;;
	*) [ $n -eq 8 ] || return 1 ;;
	esac
	for g in $(printf '%s' "$head" | tr ':' ' '); do out="$out $((16#$g))"; done
	zeros=$((8 - n))
	while [ $zeros -gt 0 ]; do out="$out 0"; zeros=$((zeros - 1)); done
	for g in $(printf '%s' "$tail" | tr ':' ' '); do out="$out $((16#$g))"; done
	echo "${out# }"
}

is_ipv6() { ipv6_groups "$1" >/dev/null; }

# in_cidr IP CIDR: IP (IPv4 or IPv6) is inside CIDR, of the same family.
in_cidr() {
	local net=${2%/*} bits=${2#*/} mask ip_g net_g a b
	if is_ipv4 "$1"; then
		is_ipv4 "$net" || return 1
		mask=$(((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF))
		[ "$bits" -eq 0 ] && mask=0
		[ $(($(ip2int "$1") & mask)) -eq $(($(ip2int "$net") & mask)) ]
		return
	fi
	ip_g=$(ipv6_groups "$1") || return 1
	net_g=$(ipv6_groups "$net") || return 1
	# shellcheck disable=SC2086 # the network's groups, one argument each
	set -- $net_g
	for a in $ip_g; do
		[ "$bits" -gt 0 ] || return 0
		b=$1
		shift
		if [ "$bits" -ge 16 ]; then mask=65535; else mask=$(((65535 << (16 - bits)) & 65535)); fi
		[ $((a & mask)) -eq $((b & mask)) ] || return 1
		bits=$((bits - 16))
	done
}

# is_cidr CIDR: an IPv4 or IPv6 network with its prefix length.
is_cidr() {
	local net=${1%/*} bits=${1#*/}
	[ "$bits" != "$1" ] || return 1
	case $bits in '' | *[!0-9]*) return 1 ;; esac
	if is_ipv4 "$net"; then
		[ "$bits" -le 32 ]
	else
		is_ipv6 "$net" && [ "$bits" -le 128 ]
	fi
}

# service_cidr_of IP: prints the Service CIDR holding IP, if any.
service_cidr_of() {
	local cidr
	for cidr in $SERVICE_CIDRS; do
		if in_cidr "$1" "$cidr"; then
			echo "$cidr"
			return 0
		fi
	done
	return 1
}

# default_cidr_owner CIDR: whose default Service range CIDR is, when it is
# one of the defaults in use (no -s given).
default_cidr_owner() {
	[ -z "$SERVICE_CIDRS_GIVEN" ] || return 1
	case $1 in
	10.96.0.0/12) echo "kubeadm's default" ;;
	10.100.0.0/16 | 172.20.0.0/16) echo "EKS's default" ;;
	34.118.224.0/20) echo "GKE's default" ;;
	10.0.0.0/16 | fd12:3456:789a:1::/108) echo "AKS's default" ;;
	*) return 1 ;;
	esac
}

for cidr in $SERVICE_CIDRS; do
	if ! is_cidr "$cidr"; then
		echo "warp-check: -s $cidr is not an IPv4 or IPv6 CIDR" >&2
		exit 2
	fi
done

# split_hostport ADDR: IPv4[:PORT], [IPv6][:PORT] or a bare IPv6 -> HOST PORT
# (port 53 by default) and HOSTPORT (how to print them).
split_hostport() {
	case $1 in
	\[*\]:*) HOST=${1#\[}; HOST=${HOST%%\]*}; PORT=${1##*\]:} ;;
	\[*\]) HOST=${1#\[}; HOST=${HOST%\]}; PORT=53 ;;
	*:*:*) HOST=$1; PORT=53 ;;
	*:*) HOST=${1%:*}; PORT=${1##*:} ;;
	*) HOST=$1; PORT=53 ;;
	esac
	case $PORT in '' | *[!0-9]*) return 1 ;; esac
	if is_ipv4 "$HOST"; then
		HOSTPORT="$HOST:$PORT"
	elif is_ipv6 "$HOST"; then
		HOSTPORT="[$HOST]:$PORT"
	else
		return 1
	fi
}

# --- one query -------------------------------------------------------------

# query_type NAME TYPE: asks dig for NAME's TYPE records (at SERVER and
# SERVER_PORT if set, over PROTO) and sets Q_STATUS (NOERROR, NXDOMAIN,
# SERVFAIL, REFUSED, ...; TIMEOUT or UNREACHABLE when nothing answered) and
# Q_ANSWERS (the addresses, space separated).
query_type() {
	local name=$1 type=$2 out rc
	set -- +time="$TIMEOUT" +tries=1 +noall +comments +answer
	if [ -n "${SERVER:-}" ]; then
		set -- "$@" "@$SERVER" -p "$SERVER_PORT"
	fi
	[ "${PROTO:-udp}" = tcp ] && set -- "$@" +tcp
	out=$("$DIG" "$@" "$name" "$type" 2>&1)
	rc=$?
	Q_ANSWERS=$(printf '%s\n' "$out" | awk -v t="$type" '$0 !~ /^;/ && $4 == t { print $5 }' | sort | tr '\n' ' ')
	Q_ANSWERS=${Q_ANSWERS% }
	Q_STATUS=$(printf '%s\n' "$out" | sed -n 's/.*status: \([A-Z]*\).*/\1/p' | head -n 1)
	if [ -z "$Q_STATUS" ]; then
		case $out in
		*"connection refused"* | *"network unreachable"* | *"host unreachable"*) Q_STATUS=UNREACHABLE ;;
		*"timed out"* | *"no servers could be reached"*) Q_STATUS=TIMEOUT ;;
		*) [ $rc -eq 9 ] && Q_STATUS=TIMEOUT || Q_STATUS="ERROR(dig exit $rc)" ;;
		esac
	fi
}

# query NAME: asks for NAME's A and then AAAA records and sets STATUS and
# ANSWERS (both families). AAAA is asked only when A said NOERROR: NXDOMAIN
# holds for every type, and a server that did not answer once will not.
query() {
	local a_status a_answers
	query_type "$1" A
	a_status=$Q_STATUS a_answers=$Q_ANSWERS
	STATUS=$a_status ANSWERS=$a_answers
	[ "$a_status" = NOERROR ] || return 0
	query_type "$1" AAAA
	ANSWERS="$a_answers${a_answers:+${Q_ANSWERS:+ }}$Q_ANSWERS"
	[ -n "$ANSWERS" ] || STATUS=$Q_STATUS
}

# ask IP[:PORT] PROTO NAME USAGE: query NAME there over PROTO and set the
# verdict; an address that is not IPv4[:PORT], [IPv6][:PORT] or IPv6 is the
# usage error "warp-check: USAGE" (exit 2).
ask() {
	if ! split_hostport "$1"; then
		echo "warp-check: $4" >&2
		exit 2
	fi
	SERVER=$HOST SERVER_PORT=$PORT PROTO=$2 query "$3"
	verdict
}

# --- the system resolver, as browsers use it -----------------------------

# dig reads /etc/resolv.conf; browsers and curl call getaddrinfo, which asks
# what the OS configured:
#   - Linux: glibc's NSS, in the order of the hosts line of
#     /etc/nsswitch.conf; `getent ahosts` calls getaddrinfo(3) with AF_UNSPEC
#     (getent(1), man-pages 5.13) and exits 2 when the name is not found.
#     Debian and Ubuntu put nss-mdns first for .local: "hosts: files
#     mdns4_minimal [NOTFOUND=return] dns", which "makes nss-mdns
#     authoritative for the .local domain. If you have a unicast DNS domain
#     with the same name you will no longer be able to resolve hosts from it"
#     (https://github.com/avahi/nss-mdns, README).
#   - systemd-resolved (nss-resolve, or its stub 127.0.0.53): "Multi-label
#     names with the domain suffix .local are routed to all local interfaces
#     capable of IP multicasting, using the MulticastDNS protocol ... by
#     default lookups for domains with the .local suffix are not routed to
#     DNS servers, unless the domain is specified explicitly as routing or
#     search domain" (systemd man/systemd-resolved.service.xml, Protocols and
#     Routing); "configuring the MulticastDNS domain local as search or
#     routing domain has the effect of routing lookups for this domain to
#     classic unicast DNS" (man/resolved.conf.xml, Domains=). `resolvectl
#     query` prints "NAME: ADDR -- link: IF" and "-- Information acquired
#     via protocol DNS ..." or fails with "NAME: resolve call failed: No
#     appropriate name servers or networks for name found" / "Name 'NAME' not
#     found" (src/resolve/resolvectl.c).
#   - macOS: mDNSResponder. For an A or AAAA question whose last label is
#     local it asks multicast DNS and starts a "parallel unicast query",
#     first checking for an SOA of local. only when the name has two labels;
#     negative unicast answers for .local are not passed on (mDNSResponder
#     mDNSShared/ClientRequests.c, QueryRecordOpStart/QueryRecordOpCallback;
#     Apple HT201275: "Host names that contain two or more labels in
#     addition to local ... are resolved using a DNS server by default").
#     `dscacheutil -q host -a name NAME` prints "ip_address:" and
#     "ipv6_address:" lines, nothing when the name is not found.
# WARP points the OS at its DNS proxy (127.0.2.2, 127.0.2.3, fd01:db8:1111::2
# and ::3; on Linux in /etc/resolv.conf, https://developers.cloudflare.com/
# cloudflare-one/team-and-resources/devices/cloudflare-one-client/configure/
# route-traffic/client-architecture/), so a name these tools do not send to
# unicast DNS never reaches WARP, Gateway or a resolver policy.

SYSTEM_TOOLS=""
if command -v "$GETENT" >/dev/null 2>&1; then
	SYSTEM_TOOLS="getent"
fi
if command -v "$RESOLVECTL" >/dev/null 2>&1 && "$RESOLVECTL" status >/dev/null 2>&1; then
	SYSTEM_TOOLS="$SYSTEM_TOOLS resolvectl" # systemd-resolved runs
fi
if command -v "$DSCACHEUTIL" >/dev/null 2>&1; then
	SYSTEM_TOOLS="$SYSTEM_TOOLS dscacheutil"
fi
SYSTEM_TOOLS=${SYSTEM_TOOLS# }
NSS_HOSTS=$(sed -n 's/^hosts:[[:space:]]*//p' "$NSSWITCH_CONF" 2>/dev/null | head -n 1)

# system_query TOOL NAME: asks the system resolver through TOOL and sets
# STATUS (NOERROR, NXDOMAIN, NOTFOUND, NOSERVERS, TIMEOUT or the tool's
# failure), ANSWERS, SYS_NOTE (the tool's own words) and SYS_VIA (how
# systemd-resolved got the answer).
system_query() {
	local tool=$1 name=$2 out rc msg
	SYS_NOTE="" SYS_VIA=""
	case $tool in
	getent)
		out=$("$GETENT" ahosts "$name" 2>&1)
		rc=$?
		ANSWERS=$(printf '%s\n' "$out" | awk '$2 ~ /^(STREAM|DGRAM|RAW)$/ && !seen[$1]++ { print $1 }' | sort | tr '\n' ' ')
		case $rc in
		0) STATUS=NOERROR ;;
		2) STATUS=NOTFOUND SYS_NOTE="getent ahosts: not found (exit 2)" ;;
		*) STATUS="ERROR(getent exit $rc)" ;;
		esac
		;;
	resolvectl)
		out=$("$RESOLVECTL" query "$name" 2>&1)
		rc=$?
		ANSWERS=$(printf '%s\n' "$out" | awk -v n="$name:" '
			/^[ \t]*$/ { exit }
			{ sub(/^[ \t]+/, ""); if (index($0, n) == 1) $0 = substr($0, length(n) + 1); split($0, f, " ") }
			f[1] != "" && f[1] !~ /^\(/ && f[1] !~ /resolve call failed/ { print f[1] }' | sort | tr '\n' ' ')
		SYS_VIA=$(printf '%s\n' "$out" | sed -n 's/.*Information acquired via \(protocol [^ ]*\( [^ ]*\)*\) in .*/\1/p' | head -n 1)
		if [ $rc -eq 0 ]; then
			STATUS=NOERROR
		else
			msg=$(printf '%s\n' "$out" | sed -n 's/.*resolve call failed: //p' | head -n 1)
			SYS_NOTE="resolvectl: ${msg:-exit $rc}"
			case $msg in
			*"not found"*) STATUS=NXDOMAIN ;;
			*"No appropriate name servers"*) STATUS=NOSERVERS ;;
			*"timed out"* | *"attempts to contact"*) STATUS=TIMEOUT ;;
			*) STATUS="ERROR(resolvectl exit $rc)" ;;
			esac
		fi
		;;
	dscacheutil)
		out=$("$DSCACHEUTIL" -q host -a name "$name" 2>&1)
		ANSWERS=$(printf '%s\n' "$out" | awk '/^ip(v6)?_address:/ && !seen[$2]++ { print $2 }' | sort | tr '\n' ' ')
		if [ -n "$ANSWERS" ]; then STATUS=NOERROR; else STATUS=NOTFOUND SYS_NOTE="dscacheutil: no address"; fi
		;;
	esac
	ANSWERS=${ANSWERS% }
}

is_dot_local() { case $1 in *.local | *.local.) return 0 ;; esac; return 1; }

# dot_local_trap TOOL NAME: TOOL's failure for NAME is the system resolver
# keeping a .local name off unicast DNS, whatever the resolver path says.
dot_local_trap() {
	is_dot_local "$2" || return 1
	case $1 in
	resolvectl) [ "$STATUS" = NOSERVERS ] ;;
	getent) case $NSS_HOSTS in *mdns*_minimal*"[NOTFOUND=return]"*) return 0 ;; esac; return 1 ;;
	*) return 1 ;;
	esac
}

# cause_system TOOL NAME: why TOOL's way to the system resolver does not
# resolve NAME, as far as the configuration says.
cause_system() {
	local tool=$1 name=$2
	case $tool in
	getent)
		if is_dot_local "$name"; then
			case $NSS_HOSTS in
			*mdns*_minimal*"[NOTFOUND=return]"*)
				echo "nss-mdns answers .local names itself and stops there ($NSSWITCH_CONF: hosts: $NSS_HOSTS; [NOTFOUND=return] makes mDNS authoritative for .local, nss-mdns README), so getaddrinfo never asks the WARP DNS proxy. Fix: envalias' domain form (-d; docs/deploy.md, Without resolver policies), or delete [NOTFOUND=return] from that line"
				return ;;
			*resolve*)
				echo "nss-resolve hands .local names to systemd-resolved, which keeps them on mDNS ($NSSWITCH_CONF: hosts: $NSS_HOSTS; see the resolvectl line)"
				return ;;
			esac
		fi
		echo "getaddrinfo follows $NSSWITCH_CONF (hosts: ${NSS_HOSTS:-unknown}), not /etc/resolv.conf as dig does"
		;;
	resolvectl)
		if is_dot_local "$name"; then
			echo "systemd-resolved sends .local names to multicast DNS, not to DNS servers such as WARP's proxy, unless the domain is a search or routing domain (systemd-resolved.service(8), Protocols and Routing). Fix: Domains=~$ZONE under [Resolve] in /etc/systemd/resolved.conf, then systemctl restart systemd-resolved (resolved.conf(5): a routing domain under local routes it to unicast DNS), or envalias' domain form (-d)"
		else
			echo "systemd-resolved picks DNS servers by the links' DNS domains (resolvectl status): none that reaches WARP's proxy is chosen for $name"
		fi
		;;
	dscacheutil)
		if is_dot_local "$name"; then
			echo "mDNSResponder asks multicast DNS and, for names with two or more labels before .local, unicast DNS in parallel, and drops negative unicast answers for .local (mDNSResponder ClientRequests.c; Apple HT201275): look in scutil --dns for a resolver of local or $ZONE other than WARP's proxy (127.0.2.2)"
		else
			echo "macOS resolves through the resolvers scutil --dns lists (files in /etc/resolver, scoped VPN resolvers), not /etc/resolv.conf as dig does"
		fi
		;;
	esac
}

# --- Local Domain Fallback ------------------------------------------------

# The WARP client lists the profile's fallback domains in its settings, one
# per indented line under a "Fallback domains:" header. Clients since 2024
# take `warp-cli settings list` and prefix each header with where the
# setting came from, as in Cloudflare's example warp-settings.txt:
#   (network policy)    Fallback domains: # Local domain fallback configuration
#     intranet
# (cloudflare-docs src/content/partials/cloudflare-one/troubleshooting/
# warp-client.mdx, "Fallback domains"); an entry with a description or its
# own DNS servers reads "dev.example.com (desc) -> [192.168.4.33]" (a
# `warp-cli settings` paste, gist.github.com/chussenot/2cce8e1d511b442df544647277f0b6ae).
# Older clients take `warp-cli settings` and print the headers bare
# ("Fallback domains:"), e.g. the default list: intranet internal ... local
# localhost home.arpa invalid test. A header is a line that starts with
# "(source)" or with "Name:"; anything else under the fallback header is an
# entry, whose first word is its domain.
fallback_from_warp_cli() {
	local out
	out=$("$WARPCLI" settings list 2>/dev/null)
	case $out in *"Fallback domains:"*) ;; *) out=$("$WARPCLI" settings 2>/dev/null) ;; esac
	printf '%s\n' "$out" | awk '
		{ sub(/\r$/, "") }
		/^\(/ || /^[^ \t][^:]*:([ \t]|$)/ {
			header = $0
			sub(/^\([^)]*\)[ \t]*/, "", header)
			inlist = (header ~ /^Fallback domains:/)
			next
		}
		inlist && $1 ~ /[A-Za-z0-9]/ { print $1 }' | tr '\n' ' '
}

# ldf_match NAME: prints the longest fallback domain that NAME is or ends
# in (entries match their subdomains: example.com means *.example.com).
ldf_match() {
	local name=$1 d best=""
	for d in $FALLBACK; do
		d=${d%.}
		case $name in
		"$d" | *."$d") [ ${#d} -gt ${#best} ] && best=$d ;;
		esac
	done
	[ -n "$best" ] && echo "$best"
}

cause_ldf() { # NAME ENTRY GATEWAY_PATH ANSWERS
	echo "Local Domain Fallback: $1 is under the device profile's fallback domain '$2', so the WARP client resolves it on the laptop (the entry's DNS server, or the resolver the laptop had before WARP) and never sends it to Gateway, while the Gateway path ($3) answers $4. Fix: remove '$2' from the profile's Local Domain Fallback list: manifests/cloudflare/modules/device-profile manages the whole list without it (terraform apply); by hand: Zero Trust > Settings > WARP Client > the device profile > Local Domain Fallback > Manage, delete '$2'; then check with warp-cli settings list"
}

# --- checks ----------------------------------------------------------------

PASSED=0
FAILED=0

report() { # RESULT ENV PATH NAME DETAIL
	printf '%-4s  %-5s  %-26s  %s  %s\n' "$1" "$2" "$3" "$4" "$5"
	if [ "$1" = PASS ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}

# Gateway answers a query that a DNS policy with the Block action blocks
# with "an A record of 0.0.0.0 for IPv4 destinations, or with an AAAA record
# of :: for IPv6 destinations" when the policy's block page is off
# (https://developers.cloudflare.com/cloudflare-one/traffic-policies/dns-policies/#block;
# cloudflare-docs .../traffic-policies/dns-policies/index.mdx), and with the
# block page's addresses when it is on: "the block page will resolve to
# 162.159.36.12, 162.159.46.12" unless the account has a dedicated resolver
# IP (.../configure/route-traffic/split-tunnels/, Block page). Other record
# types get REFUSED (partials/cloudflare-one/gateway/block-page-dns-records).
# A blocked name is never NXDOMAIN.
is_block_answer() {
	local ip
	for ip in $1; do
		case $ip in
		0.0.0.0 | :: | 162.159.36.12 | 162.159.46.12) ;;
		*) return 1 ;;
		esac
	done
}

# verdict sets RESULT, DETAIL and WHY (pass, blocked, clusterip, empty, or
# the STATUS that failed) from STATUS and ANSWERS: PASS needs addresses, none
# of them a ClusterIP, and not the answer of a Gateway block.
verdict() {
	local ip cidr owner
	RESULT=FAIL
	WHY=$STATUS
	case $STATUS in
	NOERROR)
		if [ -z "$ANSWERS" ]; then
			WHY=empty DETAIL="NOERROR but no A or AAAA record"
			return
		fi
		if is_block_answer "$ANSWERS"; then
			WHY=blocked DETAIL="$ANSWERS (a Gateway DNS Block policy's answer)"
			return
		fi
		for ip in $ANSWERS; do
			if cidr=$(service_cidr_of "$ip"); then
				WHY=clusterip DETAIL="$ANSWERS: answer in the Service CIDR $cidr"
				if owner=$(default_cidr_owner "$cidr"); then
					DETAIL="$DETAIL ($owner; if these are pod IPs, give your clusters' Service CIDRs with -s)"
				fi
				return
			fi
		done
		RESULT=PASS WHY=pass DETAIL=$ANSWERS
		;;
	*) DETAIL=$STATUS ;;
	esac
}

cause_unknown_name() { # ENV
	echo "the cluster does not know this name: its Corefile must say 'envalias $1' (envalias ENV), and Service $SERVICE must exist in namespace $NAMESPACE with ready endpoints (kubectl -n $NAMESPACE get endpointslices -l kubernetes.io/service-name=$SERVICE)"
}

cause_blocked() { # NAME ENV
	echo "not allowed for your identity: a Gateway DNS policy with the Block action answered $1 (0.0.0.0 and :: with the block page off, 162.159.36.12 and 162.159.46.12 with it on), so the resolver policy is not at fault: the $2 environment's access list (manifests/cloudflare/modules/environment, input access) does not hold your user or any of your groups. Ask for access; once added, re-authenticate (warp-cli registration show names the identity this device uses)"
}

cause_noerror() { # WHY NAME ENV: why a NOERROR answer failed
	case $1 in
	clusterip)
		echo "headlessonly not active on this path: the query reached CoreDNS's in-cluster listener (:53), not the VPC one (:5353); kube-dns-nlb must target port 5353 and the Corefile say 'headlessonly ... { ports 5353 }'; ClusterIPs are not reachable over WARP" ;;
	blocked) cause_blocked "$2" "$3" ;;
	*) echo "the Service has no ready endpoint of either family" ;;
	esac
}

cause_lb_silent() { # LB
	echo "no reply from $1: the load balancer IP does not go through WARP (the device profile's Split Tunnels: in its exclude list in Exclude mode, missing from its include list in Include mode), the tunnel has no route for it in the device's virtual network (warp-cli vnet), cloudflared is down or not on QUIC (UDP), or loadBalancerSourceRanges / the security group drops it"
}

run_env() { # ENV [LB_IP[:PORT]]
	local env=$1 lb=${2:-} name rname lbdesc="" udp_status="" udp_result="" udp_answers="" tcp_result="" tcp_status=""
	local r_status r_result r_detail r_why r_answers u_detail="" t_detail="" tool

	if [ -n "$DOMAIN" ]; then
		name="$SERVICE.$NAMESPACE.$env.$DOMAIN"
	else
		name="$env-$SERVICE.$NAMESPACE.svc.$ZONE"
	fi

	# The load balancer directly, over UDP and TCP.
	if [ -n "$lb" ]; then
		ask "$lb" udp "$name" "$env=$lb: want ENV=IPv4[:PORT], ENV=IPv6 or ENV=[IPv6]:PORT"
		lbdesc=$HOSTPORT
		udp_status=$STATUS
		udp_answers=$ANSWERS
		udp_result=$RESULT
		u_detail=$DETAIL
		case $STATUS in
		NXDOMAIN) u_detail="$u_detail -- likely cause: $(cause_unknown_name "$env")" ;;
		TIMEOUT) u_detail="$u_detail -- likely cause: $(cause_lb_silent "$lbdesc")" ;;
		UNREACHABLE) u_detail="$u_detail -- likely cause: nothing listens on $lbdesc: a wrong IP or port, or kube-dns-nlb has no ready endpoints" ;;
		REFUSED)
			if [ -n "$DOMAIN" ]; then
				u_detail="$u_detail -- likely cause: the VPC-facing listener serves only the zones of its keys: add the key $env.$DOMAIN:5353 to the Corefile's server block, beside cluster.local:5353 (docs/deploy.md, Local Domain Fallback)"
			else
				u_detail="$u_detail -- likely cause: the VPC-facing listener serves only its keys' zones (cluster.local:5353): is the cluster domain $ZONE (-z)?"
			fi
			;;
		SERVFAIL) u_detail="$u_detail -- likely cause: CoreDNS could not answer: its kubernetes plugin is not ready (RBAC, API server), see its log" ;;
		NOERROR) [ "$udp_result" = FAIL ] && u_detail="$u_detail -- likely cause: $(cause_noerror "$WHY" "$name" "$env")" ;;
		esac

		ask "$lb" tcp "$name" "$env=$lb: want ENV=IPv4[:PORT], ENV=IPv6 or ENV=[IPv6]:PORT"
		tcp_result=$RESULT
		tcp_status=$STATUS
		t_detail=$DETAIL
		if [ "$tcp_result" = FAIL ]; then
			if [ "$udp_result" = PASS ]; then
				t_detail="$t_detail -- likely cause: UDP works but TCP does not: the load balancer has no TCP listener on $PORT (AWS: aws-load-balancer-enable-tcp-udp-listener; GKE: a mixed-protocol Service needs 1.36.2+); large answers need TCP"
			else
				t_detail="$t_detail -- likely cause: as over UDP"
			fi
		fi
	fi

	# The resolver path: the system resolver (WARP's DNS proxy, Gateway, the
	# resolver policy) unless -r names another.
	if [ -n "$RESOLVER" ]; then
		ask "$RESOLVER" udp "$name" "-r $RESOLVER: want IPv4[:PORT], IPv6 or [IPv6]:PORT"
		rname="resolver $HOSTPORT"
	else
		rname="resolver (system)"
		SERVER="" PROTO=udp query "$name"
		verdict
	fi
	r_status=$STATUS
	r_result=$RESULT
	r_detail=$DETAIL
	r_why=$WHY
	r_answers=$ANSWERS

	# Local Domain Fallback kept the name on the laptop? Not when the entry
	# is the environment's own domain (-d), which is meant to go there.
	local entry="" g_desc="" g_result=FAIL g_answers=""
	if [ "$r_result" = FAIL ] && { [ "$r_status" = NXDOMAIN ] || [ "$r_status" = TIMEOUT ]; }; then
		entry=$(ldf_match "$name")
		if [ -n "$entry" ] && [ -n "$DOMAIN" ]; then
			case $entry in "$env.$DOMAIN" | *."$env.$DOMAIN") entry="" ;; esac
		fi
	fi
	if [ -n "$entry" ]; then
		if [ -n "$GATEWAY" ]; then
			ask "$GATEWAY" udp "$name" "-g $GATEWAY: want IPv4[:PORT], IPv6 or [IPv6]:PORT"
			g_desc=$HOSTPORT
			g_result=$RESULT
			g_answers=$ANSWERS
		elif [ -n "$lb" ]; then
			g_desc="load balancer $lbdesc"
			g_result=$udp_result
			g_answers=$udp_answers
		fi
		if [ "$g_result" = PASS ]; then
			r_detail="$r_detail -- likely cause: $(cause_ldf "$name" "$entry" "$g_desc" "$g_answers")"
		else
			entry=""
		fi
	fi
	if [ "$r_result" = FAIL ] && [ -z "$entry" ]; then
		case $r_status in
		NXDOMAIN)
			if [ "$udp_result" = PASS ]; then
				if [ -n "$DOMAIN" ]; then
					r_detail="$r_detail -- likely cause: the load balancer answers, the resolver does not ask it: Local Domain Fallback has no entry for $env.$DOMAIN pointing at the load balancer (the device profile's fallback domains)"
				else
					r_detail="$r_detail -- likely cause: the load balancer answers, the resolver does not ask it: no resolver policy regex matches $name (dns.fqdn matches ...), or a policy with lower precedence matched first"
				fi
			elif [ "$udp_status" = NXDOMAIN ]; then
				r_detail="$r_detail -- likely cause: $(cause_unknown_name "$env"); then check that the resolver policy regex sends $name to the $env cluster"
			else
				r_detail="$r_detail -- likely cause: the resolver policy regex does not send $name to the $env cluster (dns.fqdn matches ...), or that cluster's envalias ENV is not '$env'"
			fi
			;;
		SERVFAIL)
			r_detail="$r_detail -- likely cause: Gateway got no answer from the cluster: the policy's resolver IP/port, its virtual network (vnet_id) versus the route's, route_through_private_network, the tunnel (cloudflared on QUIC), or the load balancer's source ranges"
			;;
		TIMEOUT | UNREACHABLE)
			if [ -n "$RESOLVER" ]; then
				r_detail="$r_detail -- likely cause: no reply from $RESOLVER"
			else
				r_detail="$r_detail -- likely cause: the system resolver did not answer: is WARP connected (warp-cli status)? In Include mode DNS still goes to Gateway; check the device's DNS settings"
			fi
			;;
		NOERROR) r_detail="$r_detail -- likely cause: $(cause_noerror "$r_why" "$name" "$env")" ;;
		*)
			r_detail="$r_detail -- likely cause: the resolver refused or failed; see dig $name"
			;;
		esac
	fi

	# A blocked identity is most likely kept from the environment's addresses
	# by Gateway network policies as well, the load balancer's included.
	if [ "$r_why" = blocked ]; then
		local kept="; with the block above: Gateway network policies keep your identity from this environment's addresses"
		[ "$udp_status" = TIMEOUT ] && u_detail="$u_detail$kept"
		[ "$tcp_status" = TIMEOUT ] && t_detail="$t_detail$kept"
	fi

	report "$r_result" "$env" "$rname" "$name" "$r_detail"

	# The system resolver as browsers use it: what dig just saw, or not.
	for tool in $SYSTEM_TOOLS; do
		system_query "$tool" "$name"
		verdict
		[ "$RESULT" = FAIL ] && [ -n "$SYS_NOTE" ] && DETAIL=$SYS_NOTE
		if [ "$RESULT" = PASS ]; then
			[ -n "$SYS_VIA" ] && DETAIL="$DETAIL (via $SYS_VIA)"
		elif [ "$STATUS" = NOERROR ]; then
			DETAIL="$DETAIL -- likely cause: $(cause_noerror "$WHY" "$name" "$env")"
		elif [ "$r_result" = PASS ]; then
			DETAIL="$DETAIL -- likely cause: dig ($rname) resolves it to $r_answers, the system resolver that browsers use does not: $(cause_system "$tool" "$name")"
		elif dot_local_trap "$tool" "$name"; then
			DETAIL="$DETAIL -- likely cause: $(cause_system "$tool" "$name"); the resolver path fails as well (its line)"
		else
			DETAIL="$DETAIL -- likely cause: as the resolver path (its line)"
		fi
		report "$RESULT" "$env" "system $tool" "$name" "$DETAIL"
	done

	if [ -n "$lb" ]; then
		report "$udp_result" "$env" "lb $lbdesc/udp" "$name" "$u_detail"
		report "$tcp_result" "$env" "lb $lbdesc/tcp" "$name" "$t_detail"
	fi
}

if [ -z "$RESOLVER" ]; then
	sys=$(sed -n 's/^nameserver[[:space:]]*//p' /etc/resolv.conf 2>/dev/null | tr '\n' ' ')
	echo "warp-check: $SERVICE.$NAMESPACE; system resolver: ${sys:-unknown}; Service CIDRs: ${SERVICE_CIDRS# }"
else
	echo "warp-check: $SERVICE.$NAMESPACE; resolver: $RESOLVER; Service CIDRs: ${SERVICE_CIDRS# }"
fi
if [ -n "$SYSTEM_TOOLS" ]; then
	echo "warp-check: the system resolver as browsers use it: $SYSTEM_TOOLS${NSS_HOSTS:+ (nsswitch hosts: $NSS_HOSTS)}"
fi
if command -v "$WARPCLI" >/dev/null 2>&1; then
	echo "warp-check: warp-cli status: $("$WARPCLI" status 2>&1 | tr '\n' ' ')"
	[ -n "$FALLBACK_SET" ] || FALLBACK=$(fallback_from_warp_cli)
fi
if [ -n "$FALLBACK" ]; then
	echo "warp-check: Local Domain Fallback domains: $FALLBACK"
fi

for arg in "$@"; do
	case $arg in
	*=*) env=${arg%%=*}; lb=${arg#*=} ;;
	*) env=$arg; lb="" ;;
	esac
	case $env in
	'' | *[!a-z0-9-]* | -* | *-) echo "warp-check: '$env' is not an environment name (a lower-case DNS label)" >&2; exit 2 ;;
	esac
	run_env "$env" "$lb"
done

echo "warp-check: $PASSED of $((PASSED + FAILED)) checks passed"
[ "$FAILED" -eq 0 ]
