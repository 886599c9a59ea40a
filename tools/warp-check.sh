#!/usr/bin/env bash
# warp-check.sh: from a laptop with Cloudflare WARP on, check with dig that a
# Kubernetes Service resolves, per environment, the way developers use it:
#
#   1. through the system resolver (WARP -> Gateway resolver policy -> tunnel
#      -> the cluster's kube-dns-nlb), and
#   2. directly against the load balancer's fixed IP, over UDP and over TCP
#      (WARP Split Tunnel -> tunnel route -> kube-dns-nlb).
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
# One line per check, PASS or FAIL; a failure says its likely cause. Exit
# status 0 when every check passed, 1 otherwise, 2 on a usage error. Works
# with the bash 3.2 of macOS; needs only dig.
#
# Examples (docs/deploy.md, "Verify"):
#   tools/warp-check.sh api.platform stg=10.0.12.53 prd=10.1.12.53
#   tools/warp-check.sh -d k8s.example.com api.platform stg=10.0.12.53   # Local Domain Fallback
#   tools/warp-check.sh -r 127.0.0.1:1054 -s 10.96.0.0/16 api.platform stg=127.0.0.1:1054   # make run

set -u

usage() {
	cat <<'EOF'
usage: warp-check.sh [options] SERVICE.NAMESPACE ENV[=LB_IP[:PORT]]...

  SERVICE.NAMESPACE  a Service to probe, e.g. api.platform (it needs ready endpoints)
  ENV=LB_IP[:PORT]   an environment and its kube-dns-nlb IP (port 53 by default);
                     ENV alone checks only the resolver path

options:
  -d DOMAIN    envalias' domain form (Local Domain Fallback): probe
               SERVICE.NAMESPACE.ENV.DOMAIN instead of ENV-SERVICE.NAMESPACE.svc.ZONE
  -z ZONE      the cluster domain (default cluster.local)
  -r IP[:PORT] ask this resolver instead of the system resolver for check 1
  -s CIDR      a Service CIDR of the clusters; answers inside it mean ClusterIPs
               (repeatable; default 10.96.0.0/12 10.100.0.0/16 172.20.0.0/16:
               kubeadm's and EKS's)
  -t SECONDS   how long to wait for each answer (default 3)
  -f DOMAINS   the device profile's Local Domain Fallback domains, comma separated
               (default: read from `warp-cli settings`, "Fallback domains:")
  -g IP[:PORT] the Gateway path to compare the resolver with: a resolver that answers
               as Gateway's resolver policy does (default: ENV's load balancer, the
               server the policy forwards to)
  -h           this help
EOF
}

DIG=${DIG:-dig}
WARPCLI=${WARPCLI:-warp-cli}
FALLBACK=""
FALLBACK_SET=""
GATEWAY=""
ZONE=cluster.local
DOMAIN=""
RESOLVER=""
TIMEOUT=3
SERVICE_CIDRS=""
DEFAULT_SERVICE_CIDRS="10.96.0.0/12 10.100.0.0/16 172.20.0.0/16"

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

# in_cidr IP CIDR
in_cidr() {
	local net=${2%/*} bits=${2#*/} mask
	mask=$(((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF))
	[ "$bits" -eq 0 ] && mask=0
	[ $(($(ip2int "$1") & mask)) -eq $(($(ip2int "$net") & mask)) ]
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

for cidr in $SERVICE_CIDRS; do
	if ! is_ipv4 "${cidr%/*}" || [ "${cidr#*/}" = "$cidr" ]; then
		echo "warp-check: -s $cidr is not an IPv4 CIDR" >&2
		exit 2
	fi
done

# split_hostport IP[:PORT] -> HOST PORT (port 53 by default)
split_hostport() {
	case $1 in
	*:*) HOST=${1%:*}; PORT=${1##*:} ;;
	*) HOST=$1; PORT=53 ;;
	esac
	is_ipv4 "$HOST" || return 1
	case $PORT in '' | *[!0-9]*) return 1 ;; esac
}

# --- one query -------------------------------------------------------------

# query NAME [SERVER PORT [tcp]]: asks for NAME's A records and sets
# STATUS (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...; TIMEOUT or UNREACHABLE
# when nothing answered) and ANSWERS (the addresses, space separated).
query() {
	local name=$1 out rc
	set -- +time="$TIMEOUT" +tries=1 +noall +comments +answer
	if [ -n "${SERVER:-}" ]; then
		set -- "$@" "@$SERVER" -p "$SERVER_PORT"
	fi
	[ "${PROTO:-udp}" = tcp ] && set -- "$@" +tcp
	out=$("$DIG" "$@" "$name" A 2>&1)
	rc=$?
	ANSWERS=$(printf '%s\n' "$out" | awk '$0 !~ /^;/ && $4 == "A" { print $5 }' | sort | tr '\n' ' ')
	ANSWERS=${ANSWERS% }
	STATUS=$(printf '%s\n' "$out" | sed -n 's/.*status: \([A-Z]*\).*/\1/p' | head -n 1)
	if [ -z "$STATUS" ]; then
		case $out in
		*"connection refused"* | *"network unreachable"* | *"host unreachable"*) STATUS=UNREACHABLE ;;
		*"timed out"* | *"no servers could be reached"*) STATUS=TIMEOUT ;;
		*) [ $rc -eq 9 ] && STATUS=TIMEOUT || STATUS="ERROR(dig exit $rc)" ;;
		esac
	fi
}

# ask IP[:PORT] PROTO NAME USAGE: query NAME there over PROTO and set the
# verdict; an address that is not IPv4[:PORT] is the usage error
# "warp-check: USAGE" (exit 2).
ask() {
	if ! split_hostport "$1"; then
		echo "warp-check: $4" >&2
		exit 2
	fi
	SERVER=$HOST SERVER_PORT=$PORT PROTO=$2 query "$3"
	verdict
}

# --- Local Domain Fallback ------------------------------------------------

# The WARP client lists the profile's fallback domains in `warp-cli
# settings`, one per indented line under "Fallback domains:" (as a client
# with the default profile prints them: intranet internal ... local
# localhost home.arpa invalid test).
fallback_from_warp_cli() {
	"$WARPCLI" settings 2>/dev/null | awk '
		/^[^ \t]/ { inlist = ($0 ~ /^Fallback domains:/); next }
		inlist && NF { print $1 }' | tr '\n' ' '
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
	echo "Local Domain Fallback: $1 is under the device profile's fallback domain '$2', so the WARP client resolves it on the laptop (the entry's DNS server, or the resolver the laptop had before WARP) and never sends it to Gateway, while the Gateway path ($3) answers $4. Fix: remove '$2' from the profile's Local Domain Fallback list: manifests/cloudflare/modules/device-profile manages the whole list without it (terraform apply); by hand: Zero Trust > Settings > WARP Client > the device profile > Local Domain Fallback > Manage, delete '$2'; then check with warp-cli settings"
}

# --- checks ----------------------------------------------------------------

PASSED=0
FAILED=0

report() { # RESULT ENV PATH NAME DETAIL
	printf '%-4s  %-5s  %-26s  %s  %s\n' "$1" "$2" "$3" "$4" "$5"
	if [ "$1" = PASS ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}

# verdict sets RESULT and DETAIL from STATUS and ANSWERS: PASS needs
# addresses, none of them ClusterIPs.
verdict() {
	local ip cidr
	RESULT=FAIL
	case $STATUS in
	NOERROR)
		if [ -z "$ANSWERS" ]; then
			DETAIL="NOERROR but no A record"
			return
		fi
		for ip in $ANSWERS; do
			if cidr=$(service_cidr_of "$ip"); then
				DETAIL="$ANSWERS: answer in the Service CIDR $cidr"
				return
			fi
		done
		RESULT=PASS
		DETAIL=$ANSWERS
		;;
	*) DETAIL=$STATUS ;;
	esac
}

cause_unknown_name() { # ENV
	echo "the cluster does not know this name: its Corefile must say 'envalias $1' (envalias ENV), and Service $SERVICE must exist in namespace $NAMESPACE with ready endpoints (kubectl -n $NAMESPACE get endpointslices -l kubernetes.io/service-name=$SERVICE)"
}

cause_noerror() { # DETAIL: why a NOERROR answer failed
	case $1 in
	*"Service CIDR"*)
		echo "headlessonly not active on this path: the query reached CoreDNS's in-cluster listener (:53), not the VPC one (:5353); kube-dns-nlb must target port 5353 and the Corefile say 'headlessonly ... { ports 5353 }'; ClusterIPs are not reachable over WARP" ;;
	*) echo "the Service has no IPv4 endpoint" ;;
	esac
}

cause_lb_silent() { # LB
	echo "no reply from $1: the load balancer IP is not in the WARP Split Tunnel include list, the tunnel has no route for it in the device's virtual network (warp-cli vnet), cloudflared is down or not on QUIC (UDP), or loadBalancerSourceRanges / the security group drops it"
}

run_env() { # ENV [LB_IP[:PORT]]
	local env=$1 lb=${2:-} name rname lbdesc="" udp_status="" udp_result="" udp_answers="" tcp_result=""
	local r_status r_result r_detail u_detail="" t_detail=""

	if [ -n "$DOMAIN" ]; then
		name="$SERVICE.$NAMESPACE.$env.$DOMAIN"
	else
		name="$env-$SERVICE.$NAMESPACE.svc.$ZONE"
	fi

	# The load balancer directly, over UDP and TCP.
	if [ -n "$lb" ]; then
		ask "$lb" udp "$name" "$env=$lb: want ENV=IPv4[:PORT]"
		lbdesc="$HOST:$PORT"
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
		NOERROR) [ "$udp_result" = FAIL ] && u_detail="$u_detail -- likely cause: $(cause_noerror "$u_detail")" ;;
		esac

		ask "$lb" tcp "$name" "$env=$lb: want ENV=IPv4[:PORT]"
		tcp_result=$RESULT
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
		ask "$RESOLVER" udp "$name" "-r $RESOLVER: want IPv4[:PORT]"
		rname="resolver $HOST:$PORT"
	else
		rname="resolver (system)"
		SERVER="" PROTO=udp query "$name"
		verdict
	fi
	r_status=$STATUS
	r_result=$RESULT
	r_detail=$DETAIL

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
			ask "$GATEWAY" udp "$name" "-g $GATEWAY: want IPv4[:PORT]"
			g_desc="$HOST:$PORT"
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
		NOERROR) r_detail="$r_detail -- likely cause: $(cause_noerror "$r_detail")" ;;
		*)
			r_detail="$r_detail -- likely cause: the resolver refused or failed; see dig $name"
			;;
		esac
	fi

	report "$r_result" "$env" "$rname" "$name" "$r_detail"
	if [ -n "$lb" ]; then
		report "$udp_result" "$env" "lb $lbdesc/udp" "$name" "$u_detail"
		report "$tcp_result" "$env" "lb $lbdesc/tcp" "$name" "$t_detail"
	fi
}

if [ -z "$RESOLVER" ]; then
	sys=$(sed -n 's/^nameserver[[:space:]]*//p' /etc/resolv.conf 2>/dev/null | tr '\n' ' ')
	echo "warp-check: $SERVICE.$NAMESPACE; system resolver: ${sys:-unknown}; Service CIDRs:$SERVICE_CIDRS"
else
	echo "warp-check: $SERVICE.$NAMESPACE; resolver: $RESOLVER; Service CIDRs:$SERVICE_CIDRS"
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
