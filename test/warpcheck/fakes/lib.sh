# Shared by the stand-ins in this directory: the system resolver's unicast
# DNS path, which on a laptop with WARP on is WARP's DNS proxy (here
# FAKE_DNS, HOST:PORT or [IPv6]:PORT, asked with dig).

# unicast NAME: asks FAKE_DNS for NAME's A and AAAA records; sets RCODE
# (the A query's: NOERROR, NXDOMAIN, SERVFAIL, ...; TIMEOUT) and ADDRS (A
# records, then AAAA records, space separated).
unicast() {
	host=${FAKE_DNS%:*}
	port=${FAKE_DNS##*:}
	host=${host#\[}
	host=${host%\]}
	ADDRS=""
	RCODE=""
	for type in A AAAA; do
		out=$(dig +time=2 +tries=1 +noall +comments +answer -p "$port" "@$host" "$1" "$type" 2>&1)
		rcode=$(printf '%s\n' "$out" | sed -n 's/.*status: \([A-Z]*\).*/\1/p' | head -n 1)
		[ -n "$rcode" ] || rcode=TIMEOUT
		[ -n "$RCODE" ] || RCODE=$rcode
		[ "$rcode" = NOERROR ] || break
		ADDRS="$ADDRS $(printf '%s\n' "$out" | awk -v t="$type" '$0 !~ /^;/ && $4 == t { print $5 }' | tr '\n' ' ')"
	done
	# shellcheck disable=SC2086 # squeeze the spaces
	set -- $ADDRS
	ADDRS="$*"
}

is_dot_local() { case $1 in *.local | *.local.) return 0 ;; esac; return 1; }

# resolved NAME: systemd-resolved's routing of a multi-label name
# (systemd man/systemd-resolved.service.xml, Protocols and Routing): a name
# ending in .local goes to multicast DNS only, "unless the domain is
# specified explicitly as routing or search domain"; here no link has
# MulticastDNS on, so no scope takes it (the "No appropriate name servers or
# networks for name found" of resolvectl.c) unless a domain of
# FAKE_RESOLVED_DOMAINS (resolved.conf's Domains=, e.g. "~cluster.local")
# covers it. Everything else goes to the DNS servers (FAKE_DNS). Sets RCODE
# (NOSERVERS for the first case) and ADDRS.
resolved() {
	if is_dot_local "$1"; then
		covered=""
		for d in ${FAKE_RESOLVED_DOMAINS:-}; do
			d=${d#\~}
			case $1 in "$d" | *."$d") covered=1 ;; esac
		done
		if [ -z "$covered" ]; then
			RCODE=NOSERVERS
			ADDRS=""
			return
		fi
	fi
	unicast "$1"
}
