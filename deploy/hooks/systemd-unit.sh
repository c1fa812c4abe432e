#!/bin/sh
# systemd-unit.sh — starts a systemd service when this node becomes primary and stops it
# when it must stop (hook mode, for a workload that systemd manages, e.g. a binlog shipper
# packaged as binlog-shipper.service):
#
#   electd ... --on-start "/etc/electd/hooks/systemd-unit.sh start binlog-shipper.service" \
#              --on-stop  "/etc/electd/hooks/systemd-unit.sh stop binlog-shipper.service"
#
# The fencing token is handed to the service through a drop-in environment file,
# /run/electd/<unit>.env (EnvironmentFile=-/run/electd/%n.env in the unit), written before
# the start. `systemctl stop` returns once the service has stopped (or systemd killed it
# after its own TimeoutStopSec), so on-stop finishes only when the workload is down — keep
# the unit's TimeoutStopSec below electd's --hook-timeout. The user electd runs as needs
# the right to start and stop that unit (polkit rule or sudoers entry; see docs/operations.md).
set -eu

[ "$#" -eq 2 ] || {
    echo "usage: systemd-unit.sh start|stop UNIT" >&2
    exit 2
}
action=$1 unit=$2
# HOOK_ENV_DIR (set in electd's environment) overrides the directory; electd passes no
# ELECTD_* variable of its own environment on to hooks, hence the name.
envdir=${HOOK_ENV_DIR:-/run/electd}

case $action in
start)
    mkdir -p "$envdir"
    tmp=$envdir/.$unit.env.$$
    {
        echo "ELECTD_FENCING_TOKEN=${ELECTD_FENCING_TOKEN:-}"
        echo "ELECTD_TERM=${ELECTD_TERM:-}"
        echo "ELECTD_HTTP=${ELECTD_HTTP:-}"
        echo "ELECTD_NODE_ID=${ELECTD_NODE_ID:-}"
    } >"$tmp"
    mv "$tmp" "$envdir/$unit.env"
    systemctl start "$unit"
    ;;
stop)
    systemctl stop "$unit"
    ;;
*)
    echo "systemd-unit.sh: unknown action '$action'" >&2
    exit 2
    ;;
esac
