#!/bin/sh
# notify.sh — a keepalived-style notify hook for electd: logs every transition and runs an
# optional script per state, the way keepalived's notify_master/notify_backup do.
#
#   electd ... --on-change "/etc/electd/hooks/notify.sh"
#       electd appends the new role (primary or standby) as the last argument
#   electd ... --on-start "/etc/electd/hooks/notify.sh primary" \
#              --on-stop  "/etc/electd/hooks/notify.sh standby"
#
# Runs /etc/electd/notify.d/<role> (NOTIFY_DIR overrides the directory) with the same
# environment when it exists and is executable. electd gives every hook ELECTD_ROLE,
# ELECTD_NODE_ID, ELECTD_LEADER_ID, ELECTD_TERM, ELECTD_FENCING_TOKEN, ELECTD_HTTP and
# ELECTD_LEASE_MS; the hook's output goes to electd's log, and its exit status counts:
# a failing on-start counts as a failed workload start.
set -eu

role=${1:-${ELECTD_ROLE:-unknown}}
# With extra arguments ("notify.sh primary" used as on-change), the appended role wins.
if [ "$#" -gt 1 ]; then
    shift $(($# - 1))
    role=$1
fi
case $role in
primary | standby) ;;
*)
    echo "notify: unknown role '$role' (want primary or standby)" >&2
    exit 2
    ;;
esac

echo "notify: node=${ELECTD_NODE_ID:-?} role=$role leader=${ELECTD_LEADER_ID:-none}" \
    "term=${ELECTD_TERM:-?} token=${ELECTD_FENCING_TOKEN:-?}"
if command -v logger >/dev/null 2>&1; then
    logger -t electd-notify "node=${ELECTD_NODE_ID:-?} role=$role term=${ELECTD_TERM:-?}" || true
fi

script=${NOTIFY_DIR:-/etc/electd/notify.d}/$role
if [ -x "$script" ]; then
    exec "$script" "$role"
fi
