#!/bin/sh
# gate-hold.sh — electd's --on-start/--on-stop hooks for a workload started by
# deploy/k8s/gate.sh in another container of the same pod (shared emptyDir GATE_DIR):
#
#   electd ... --on-start "/etc/electd/hooks/gate-hold.sh release" \
#              --on-stop  "/etc/electd/hooks/gate-hold.sh hold"
#
# hold:    creates GATE_DIR/hold (the gate stops the workload and starts nothing) and waits
#          until the gate reports "held" — written only by a round of the gate that saw the
#          hold file from its start and runs no workload (a "stopped" written before the file
#          existed proves nothing: that round may still start one) — so electd hands
#          leadership over only once the workload is down. Bounded by GATE_HOLD_WAIT_S (default 20 s; keep it below
#          --hook-timeout); exits 1 if the gate did not confirm (the gate's lease watchdog
#          still stops the workload before the lease can expire).
# release: removes GATE_DIR/hold; the gate starts the workload once it sees the lease.
set -eu

dir=${GATE_DIR:-/run/electd-gate}
case ${1:-} in
release)
    rm -f "$dir/hold"
    echo "gate-hold: released (term ${ELECTD_TERM:-?}, token ${ELECTD_FENCING_TOKEN:-?})"
    ;;
hold)
    mkdir -p "$dir"
    : >"$dir/hold"
    limit=$((${GATE_HOLD_WAIT_S:-20} * 10))
    i=0
    while [ "$i" -lt "$limit" ]; do
        state=$(cat "$dir/state" 2>/dev/null || echo missing)
        if [ "$state" = held ] || [ "$state" = missing ]; then
            echo "gate-hold: workload stopped"
            exit 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    echo "gate-hold: the gate did not report the workload stopped within ${GATE_HOLD_WAIT_S:-20}s" >&2
    exit 1
    ;;
*)
    echo "usage: gate-hold.sh hold|release" >&2
    exit 2
    ;;
esac
