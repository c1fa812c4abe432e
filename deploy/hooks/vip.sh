#!/bin/sh
# vip.sh — moves a virtual IP address to the primary: `ip addr add` when this node becomes
# primary (then a gratuitous ARP so neighbours update their caches at once), `ip addr del`
# when it stops. Needs CAP_NET_ADMIN (root, or AmbientCapabilities=CAP_NET_ADMIN in the
# systemd unit) and iproute2; arping (package iputils-arping) is used when present.
#
#   electd ... --on-start "/etc/electd/hooks/vip.sh start 10.0.0.100/24 eth0" \
#              --on-stop  "/etc/electd/hooks/vip.sh stop 10.0.0.100/24 eth0"
#
# Safe to repeat: adding an address that is there, or removing one that is not, succeeds
# (electd runs hooks at least once, so a restart after a crash may run on-stop again).
# A VIP is not fenced: a primary frozen past its lease still holds the address until its
# on-stop runs. Clients that write through the VIP must also carry the fencing token, or
# the service behind it must check it.
set -eu

usage() {
    echo "usage: vip.sh start|stop ADDRESS/PREFIX DEVICE" >&2
    exit 2
}
[ "$#" -eq 3 ] || usage
action=$1 cidr=$2 dev=$3
case $cidr in */*) ;; *) usage ;; esac
addr=${cidr%/*}

has_addr() { ip -o addr show dev "$dev" | grep -q "inet6\{0,1\} $addr/"; }

case $action in
start)
    if ! has_addr; then
        ip addr add "$cidr" dev "$dev"
    fi
    if command -v arping >/dev/null 2>&1; then
        # Unsolicited ARP (IPv4), bounded: three packets, at most three seconds.
        arping -q -U -c 3 -w 3 -I "$dev" "$addr" || true
    fi
    echo "vip: $cidr on $dev (term ${ELECTD_TERM:-?}, token ${ELECTD_FENCING_TOKEN:-?})"
    ;;
stop)
    if has_addr; then
        ip addr del "$cidr" dev "$dev"
    fi
    echo "vip: $cidr removed from $dev"
    ;;
*) usage ;;
esac
