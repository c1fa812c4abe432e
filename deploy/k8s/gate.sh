#!/bin/sh
# gate.sh — runs in the WORKLOAD container of a pod whose electd runs in a sidecar container
# (deploy/k8s/statefulset.yaml). It starts the workload command only while the electd of the
# same pod leads with a valid lease, and stops it before that lease can expire: a polling
# version of the lease watchdog that electd's own supervise mode (--exec) has built in.
#
#   gate.sh -- /usr/local/bin/binlog_worker run --source ... --sink ... --log ...
#
# Every GATE_POLL_MS it asks GET /v1/status on 127.0.0.1 (the pod's containers share the
# network namespace). When the answer says role=leader, fencing_token=term (the term-start
# entry applied) and lease_remaining_ms=L, the lease is good until (time the request was
# SENT) + L — a bound that is never late. The workload gets SIGTERM when less than
# GATE_STOP_MS + GATE_MARGIN_MS of that lease is left unrenewed, and SIGKILL GATE_STOP_MS
# later. If electd dies, freezes or loses its quorum, renewals stop and so does the workload.
# The margin covers this loop's own lateness (one poll plus one request timeout).
#
# Handovers: electd gives up its lease early when it hands leadership over (SIGTERM, POST
# /v1/leader/transfer), so the gate must have stopped the workload BEFORE that. electd runs
# in hook mode with deploy/hooks/gate-hold.sh as --on-start/--on-stop: on-stop creates
# GATE_DIR/hold and waits until this gate writes "held" to GATE_DIR/state — which it does
# only in a round that began with the hold file there and with no workload running (a round
# that had already looked before the file appeared may still start the workload; the next
# one stops it) — and electd transfers only after on-stop returned. While GATE_DIR/hold
# exists the workload never runs past that round.
# The workload gets ELECTD_ROLE, ELECTD_NODE_ID, ELECTD_TERM, ELECTD_FENCING_TOKEN,
# ELECTD_HTTP, ELECTD_LEASE_MS like a supervised one, and must carry the token on its side
# effects: this gate cannot stop a frozen machine either.
#
# Needs: a POSIX sh, curl, sleep with fractions, Linux /proc/uptime (a monotonic clock).
# Env:   ELECTD_API (127.0.0.1:7480, or a URL: https://127.0.0.1:7480), GATE_CACERT (the CA
#        of an HTTPS API), GATE_POLL_MS (100), GATE_STOP_MS (500: like --stop-timeout),
#        GATE_MARGIN_MS (300), GATE_TOKEN_FILE (a bearer token for the API),
#        GATE_DIR (/run/electd-gate: an emptyDir shared with the electd container)
set -u

[ "${1:-}" = "--" ] && shift
[ "$#" -ge 1 ] || {
    echo "usage: gate.sh -- COMMAND [ARGS...]" >&2
    exit 2
}
API=${ELECTD_API:-127.0.0.1:7480}
case $API in
http://* | https://*) ;;
*) API=http://$API ;;
esac
CACERT=${GATE_CACERT:-}
POLL_MS=${GATE_POLL_MS:-100}
STOP_MS=${GATE_STOP_MS:-300}
MARGIN_MS=${GATE_MARGIN_MS:-300}
REQ_TIMEOUT=0.2 # seconds; part of MARGIN_MS
DIR=${GATE_DIR:-/run/electd-gate}
mkdir -p "$DIR"

# Milliseconds since boot, from /proc/uptime (10 ms resolution, never goes back).
now_ms() {
    read -r up _ </proc/uptime
    frac=${up#*.}
    frac=${frac#0}
    echo $((${up%.*} * 1000 + frac * 10))
}

field() { # field NAME JSON: a number or a bare word value of "NAME":
    printf '%s' "$2" | sed -n "s/.*\"$1\":\"\{0,1\}\([A-Za-z0-9_]*\).*/\1/p"
}

child=""
deadline=0
token=""
stopping=0
term_seen=0
trap 'stopping=1' TERM INT

log() { echo "gate: $*" >&2; }

set_state() { # what the on-stop hook waits for; replaced atomically
    echo "$1" >"$DIR/.state.$$" && mv "$DIR/.state.$$" "$DIR/state"
}
set_state stopped

stop_child() { # SIGTERM, then SIGKILL after STOP_MS (bounded wait)
    [ -n "$child" ] || return 0
    kill -TERM "$child" 2>/dev/null
    waited=0
    while kill -0 "$child" 2>/dev/null && [ "$waited" -lt "$STOP_MS" ]; do
        sleep 0.05
        waited=$((waited + 50))
    done
    if kill -0 "$child" 2>/dev/null; then
        log "workload $child still running after ${STOP_MS} ms: SIGKILL"
        kill -KILL "$child" 2>/dev/null
    fi
    wait "$child" 2>/dev/null
    log "workload $child stopped ($1)"
    child=""
    set_state stopped
}

auth=""
if [ -n "${GATE_TOKEN_FILE:-}" ]; then
    auth="Authorization: Bearer $(cat "$GATE_TOKEN_FILE")"
fi

while [ "$stopping" = 0 ]; do
    sent=$(now_ms)
    if [ -n "$auth" ]; then
        status=$(curl -fsS -m "$REQ_TIMEOUT" ${CACERT:+--cacert "$CACERT"} -H "$auth" "$API/v1/status" 2>/dev/null) || status=""
    else
        status=$(curl -fsS -m "$REQ_TIMEOUT" ${CACERT:+--cacert "$CACERT"} "$API/v1/status" 2>/dev/null) || status=""
    fi
    role=$(field role "$status")
    t=$(field term "$status")
    tok=$(field fencing_token "$status")
    lease=$(field lease_remaining_ms "$status")
    why="lease not renewed"
    held=0
    if [ -e "$DIR/hold" ]; then
        held=1 deadline=0 why="electd's on-stop hook asked" # stop now, start nothing
    elif [ -n "$status" ] && [ "$role" != leader ]; then
        deadline=0 why="electd no longer leads" # no need to wait for the deadline
    elif [ "$role" = leader ] && [ -n "$tok" ] && [ "$tok" = "$t" ] && [ -n "$lease" ]; then
        if [ -n "$child" ] && [ "$tok" != "$token" ]; then
            stop_child "the fencing token changed from $token to $tok"
        fi
        deadline=$((sent + lease))
        token=$tok
        term_seen=$t
    fi

    now=$(now_ms)
    left=$((deadline - now))
    if [ -n "$child" ] && ! kill -0 "$child" 2>/dev/null; then
        wait "$child"
        log "workload $child exited with status $?; restarting it if still primary in 1 s"
        child=""
        set_state stopped
        sleep 1
        continue
    fi
    if [ -n "$child" ] && [ "$left" -le $((STOP_MS + MARGIN_MS)) ]; then
        stop_child "$why"
    fi
    if [ "$held" = 1 ]; then
        # Seen at the top of this round, nothing running: what the on-stop hook waits for.
        [ "$(cat "$DIR/state" 2>/dev/null)" = held ] || set_state held
    elif [ -z "$child" ] && [ "$left" -gt $((STOP_MS + MARGIN_MS + POLL_MS)) ]; then
        # One poll of headroom above the stop threshold, so a start is not followed at
        # once by a stop while the lease is being renewed normally.
        ELECTD_ROLE=primary ELECTD_TERM=$term_seen ELECTD_FENCING_TOKEN=$token \
            ELECTD_HTTP=$API ELECTD_LEASE_MS=$lease ELECTD_NODE_ID=${POD_NAME:-$(cat /proc/sys/kernel/hostname)} \
            "$@" &
        child=$!
        set_state "running $child"
        log "primary with token $token: started workload $child"
    fi
    sleep "$((POLL_MS / 1000)).$(printf '%03d' $((POLL_MS % 1000)))"
done
stop_child "the gate got SIGTERM"
exit 0
