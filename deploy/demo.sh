#!/usr/bin/env bash
# demo.sh — `make demo`: a three-node electd cluster on 127.0.0.1, each node supervising a
# copy of the example binlog worker (deploy/examples/binlog-worker). It prints a live line
# per second, kills the primary's electd with SIGKILL (failover), hands over gracefully
# with SIGTERM, stops everything it started (by PID) and verifies the workers' history: no
# event skipped, events shipped twice only after the last checkpoint, primaries never
# overlapped. Exit status 0 only when every check passed.
#
# Part 2 runs six named elections (binlog pipelines) in one group, spread over the three
# members, kills a member that holds two and does not lead, and verifies every pipeline.
#
# Usage: deploy/demo.sh [BUILD_DIR]     (default: build)
# Env:   DEMO_SHORT=1   short phases for CI (about 35 s instead of about 75 s, both parts)
#        DEMO_KEEP=1    keep the data directory and logs (always kept on failure)
#        ELECTD_BIN, WORKER_BIN    the binaries (default: under BUILD_DIR)
#        DEMO_PORT_BASE            first port to try (default: a random one in 20000-29999)
set -u -o pipefail
export LC_ALL=C

BUILD=${1:-build}
ELECTD_BIN=${ELECTD_BIN:-$BUILD/sidecar/electd}
WORKER_BIN=${WORKER_BIN:-$BUILD/deploy/examples/binlog-worker/binlog_worker}
SHORT=${DEMO_SHORT:-0}
KEEP=${DEMO_KEEP:-0}

NODES=(a b c)
RATE=100   # events per second the primary ships
EVERY=25   # events between checkpoints
if [ "$SHORT" = 1 ]; then
    P1=4 P2=3 P3=3
else
    P1=10 P2=8 P3=8
fi
WAIT_PRIMARY=20 # seconds at most for any primary to appear
WAIT_STOP=15    # seconds at most for a process to exit after SIGTERM

for bin in "$ELECTD_BIN" "$WORKER_BIN"; do
    if [ ! -x "$bin" ]; then
        echo "demo: $bin is missing: build first (make demo does)" >&2
        exit 2
    fi
done
ELECTD_BIN=$(cd "$(dirname "$ELECTD_BIN")" && pwd)/$(basename "$ELECTD_BIN")
WORKER_BIN=$(cd "$(dirname "$WORKER_BIN")" && pwd)/$(basename "$WORKER_BIN")

DIR=$(mktemp -d "${TMPDIR:-/tmp}/electd-demo.XXXXXX") || exit 2
declare -A PID=() HTTP=() PEER=()
FAILED=0
SUMMARY=()

now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}
T0=$(now_ms)
elapsed() { printf '%5.1fs' "$(($(now_ms) - T0))e-3"; }
say() { printf '[%s] %s\n' "$(elapsed)" "$*"; }
fail() {
    say "FAILED: $*"
    SUMMARY+=("FAILED: $*")
    FAILED=1
}

# ---- processes: started here, stopped here, by PID only ---------------------------------

alive() { [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null; }

# Waits (bounded) for a PID of ours to exit; sets EXIT_STATUS. Not in a subshell: only
# this shell can reap its children.
EXIT_STATUS=""
wait_exit() {
    local pid=$1 limit=$2 i
    EXIT_STATUS=""
    for ((i = 0; i < limit * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null
            EXIT_STATUS=$?
            return 0
        fi
        sleep 0.1
    done
    return 1
}

cleanup() {
    local n
    for n in "${NODES[@]}"; do
        if alive "$n"; then
            kill -TERM "${PID[$n]}" 2>/dev/null
        fi
    done
    for n in "${NODES[@]}"; do
        if [ -n "${PID[$n]:-}" ] && ! wait_exit "${PID[$n]}" "$WAIT_STOP"; then
            say "electd $n (pid ${PID[$n]}) did not stop on SIGTERM: SIGKILL"
            kill -KILL "${PID[$n]}" 2>/dev/null
            wait "${PID[$n]}" 2>/dev/null
        fi
        PID[$n]=""
    done
}
trap 'cleanup; say "interrupted; logs in $DIR"; exit 130' INT TERM

# Ports: six free ones in a row. A port is free when nothing accepts a connection on it.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_ports() {
    local base=${DEMO_PORT_BASE:-$((20000 + RANDOM % 9990))} tries p ok i
    for ((tries = 0; tries < 50; tries++)); do
        p=$((base + tries * 7))
        ok=1
        for ((i = 0; i < 6; i++)); do
            port_free $((p + i)) || ok=0
        done
        if [ $ok = 1 ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

start_node() {
    local n=$1
    "$ELECTD_BIN" --name "$n" --peers "$PEERS" --data-dir "$DIR/$n" \
        --listen-http "${HTTP[$n]}" --cluster-name demo \
        --exec -- "$WORKER_BIN" run --source "$DIR/binlog.events" --sink "$DIR/sink.events" \
        --log "$DIR/workers.log" --every "$EVERY" --rate "$RATE" >>"$DIR/electd-$n.log" 2>&1 &
    PID[$n]=$!
}

# ---- a minimal HTTP GET in bash (no curl needed): sets STATUS and BODY -------------------

STATUS=0
BODY=""
http_get() {
    local addr=$1 path=$2 fd line
    STATUS=0
    BODY=""
    { exec {fd}<>"/dev/tcp/${addr%:*}/${addr##*:}"; } 2>/dev/null || return 1
    printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$addr" >&"$fd"
    if IFS= read -r -t 2 line <&"$fd"; then
        [[ $line =~ ^HTTP/1\.[01]\ ([0-9]{3}) ]] && STATUS=${BASH_REMATCH[1]}
        while IFS= read -r -t 2 line <&"$fd" && [ "$line" != $'\r' ]; do :; done
        IFS= read -r -t 2 -d '' BODY <&"$fd"
    fi
    exec {fd}>&-
    [ "$STATUS" != 0 ]
}

# Role and workload state of node n: sets ROLE, WSTATE, TERM, TOKEN ("-" when unreachable).
node_status() {
    ROLE=- WSTATE=- TERM=- TOKEN=-
    alive "$1" || { ROLE=down; return 1; }
    http_get "${HTTP[$1]}" /v1/status && [ "$STATUS" = 200 ] || return 1
    [[ $BODY =~ \"role\":\"([a-z]+)\" ]] && ROLE=${BASH_REMATCH[1]}
    [[ $BODY =~ \"term\":([0-9]+) ]] && TERM=${BASH_REMATCH[1]}
    [[ $BODY =~ \"fencing_token\":([0-9]+) ]] && TOKEN=${BASH_REMATCH[1]}
    [[ $BODY =~ \"workload\":\{[^}]*\"state\":\"([a-z]+)\" ]] && WSTATE=${BASH_REMATCH[1]}
    return 0
}

# The node whose workload runs as primary, or "" (sets PRIMARY, PTERM, PTOKEN, ROLES).
find_primary() {
    local n
    PRIMARY="" PTERM=- PTOKEN=- ROLES=""
    for n in "${NODES[@]}"; do
        node_status "$n"
        ROLES+=" $n=$ROLE"
        if [ "$WSTATE" = primary ]; then
            PRIMARY=$n PTERM=$TERM PTOKEN=$TOKEN
        fi
    done
}

checkpoint() {
    local n
    for n in "${NODES[@]}"; do
        alive "$n" || continue
        if http_get "${HTTP[$n]}" "/v1/kv/binlog/position?stale&raw"; then
            case $STATUS in
            200) echo "${BODY%% offset=*}" && return ;;
            404) echo "none yet" && return ;;
            esac
        fi
    done
    echo "?"
}

shipped() {
    local lines=0
    [ -f "$DIR/sink.events" ] && lines=$(wc -l <"$DIR/sink.events")
    echo "$lines"
}

live_line() {
    find_primary
    say "primary: ${PRIMARY:-none} term ${PTERM} token ${PTOKEN} | checkpoint: $(checkpoint) |" \
        "shipped: $(shipped) events |${ROLES}"
}

# Prints a live line every second for $1 seconds.
watch() {
    local i
    for ((i = 0; i < $1; i++)); do
        live_line
        sleep 1
    done
}

# Polls (100 ms) until a primary other than $1 runs; prints a live line each second.
# Sets NEW_PRIMARY and TOOK_MS. Bounded by WAIT_PRIMARY seconds.
wait_new_primary() {
    local old=$1 start i
    start=$(now_ms)
    NEW_PRIMARY=""
    for ((i = 0; i < WAIT_PRIMARY * 10; i++)); do
        find_primary
        if [ -n "$PRIMARY" ] && [ "$PRIMARY" != "$old" ]; then
            NEW_PRIMARY=$PRIMARY
            TOOK_MS=$(($(now_ms) - start))
            return 0
        fi
        if ((i % 10 == 0)); then
            live_line
        fi
        sleep 0.1
    done
    return 1
}

wait_ready() {
    local n=$1 i
    for ((i = 0; i < WAIT_PRIMARY * 10; i++)); do
        if http_get "${HTTP[$n]}" /readyz && [ "$STATUS" = 200 ]; then
            return 0
        fi
        alive "$n" || return 1
        sleep 0.1
    done
    return 1
}

# ---- the demo ----------------------------------------------------------------------------

BASE=$(pick_ports) || {
    echo "demo: no six free ports found" >&2
    exit 2
}
PEERS=""
i=0
for n in "${NODES[@]}"; do
    PEER[$n]=127.0.0.1:$((BASE + i))
    HTTP[$n]=127.0.0.1:$((BASE + 3 + i))
    PEERS+="${PEERS:+,}$n=${PEER[$n]}"
    i=$((i + 1))
done

echo "electd demo: three nodes on 127.0.0.1, each supervising a binlog worker"
echo "  data and logs: $DIR"
for n in "${NODES[@]}"; do
    echo "  node $n: peers on ${PEER[$n]}, HTTP API on http://${HTTP[$n]}/v1/status"
done
echo "  worker: ships $RATE events/s from binlog.events to sink.events, checkpoint every" \
    "$EVERY events (PUT /v1/kv/binlog/position?fence=TOKEN)"
echo

"$WORKER_BIN" generate "$DIR/binlog.events" $((RATE * (P1 + P2 + P3 + 60))) || exit 2
for n in "${NODES[@]}"; do
    start_node "$n"
done
say "started electd a, b, c (pids ${PID[a]}, ${PID[b]}, ${PID[c]})"

if wait_new_primary ""; then
    say "first primary: $NEW_PRIMARY, ${TOOK_MS} ms after the primary search began"
else
    fail "no primary within ${WAIT_PRIMARY}s"
fi

if [ $FAILED = 0 ]; then
    watch "$P1"

    # 1. Failover: the primary's electd dies without warning.
    find_primary
    victim=$PRIMARY
    say ">>> kill -9 electd on $victim (pid ${PID[$victim]}): its worker is stopped by the shim"
    kill -KILL "${PID[$victim]}"
    wait "${PID[$victim]}" 2>/dev/null
    PID[$victim]=""
    if wait_new_primary "$victim"; then
        say ">>> failover: $NEW_PRIMARY is primary ${TOOK_MS} ms after the kill"
        SUMMARY+=("failover after kill -9 of $victim's electd: $NEW_PRIMARY primary in ${TOOK_MS} ms")
    else
        fail "no new primary within ${WAIT_PRIMARY}s of killing $victim"
    fi
    say "restarting electd $victim (same data directory)"
    start_node "$victim"
    wait_ready "$victim" || fail "$victim did not rejoin within ${WAIT_PRIMARY}s"
fi

if [ $FAILED = 0 ]; then
    watch "$P2"

    # 2. Graceful handover: SIGTERM stops the worker (final checkpoint), then hands over.
    find_primary
    leaving=$PRIMARY
    say ">>> kill -TERM electd on $leaving (pid ${PID[$leaving]}): graceful handover"
    kill -TERM "${PID[$leaving]}"
    if wait_new_primary "$leaving"; then
        say ">>> handover: $NEW_PRIMARY is primary ${TOOK_MS} ms after the SIGTERM"
    else
        fail "no new primary within ${WAIT_PRIMARY}s of SIGTERM to $leaving"
    fi
    if wait_exit "${PID[$leaving]}" "$WAIT_STOP"; then
        st=$EXIT_STATUS
        say "electd $leaving exited with status $st"
        SUMMARY+=("graceful handover from $leaving (SIGTERM): ${NEW_PRIMARY:-nobody} primary in ${TOOK_MS:-?} ms, electd exited $st")
        [ "$st" = 0 ] || fail "electd $leaving exited $st after SIGTERM (want 0)"
    else
        fail "electd $leaving still running ${WAIT_STOP}s after SIGTERM"
    fi
    PID[$leaving]=""
    say "restarting electd $leaving"
    start_node "$leaving"
    wait_ready "$leaving" || fail "$leaving did not rejoin within ${WAIT_PRIMARY}s"
    watch "$P3"
fi

# 3. Stop everything we started, then check that no worker outlived its electd.
live_line
say "stopping all nodes (SIGTERM, by PID)"
cleanup
stray=0
if [ -f "$DIR/workers.log" ]; then
    while read -r wpid; do
        for ((i = 0; i < 30; i++)); do
            kill -0 "$wpid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$wpid" 2>/dev/null && grep -q binlog_worker "/proc/$wpid/cmdline" 2>/dev/null; then
            stray=$((stray + 1))
        fi
    done < <(awk '$3 == "start" { print $4 }' "$DIR/workers.log" | sort -u)
fi
[ $stray = 0 ] || fail "$stray worker processes outlived their electd"

echo
echo "== verification (from sink.events and workers.log) =="
if ! "$WORKER_BIN" verify --sink "$DIR/sink.events" --log "$DIR/workers.log" \
    >"$DIR/verify.txt" 2>&1; then
    FAILED=1
    SUMMARY+=("FAILED: verification")
fi
cat "$DIR/verify.txt"
runs=$(awk '$3 == "start"' "$DIR/workers.log" 2>/dev/null | wc -l)
[ "$runs" -ge 3 ] || fail "expected at least 3 primary runs (start, failover, handover), saw $runs"


# ---- part 2: named elections — six pipelines spread over the three members ----------------

PIPES=(orders billing audit users stock events)
declare -A HOLDER=() PTOK=()

# Sets HOLDER[p] (a node name, or "-") and PTOK[p] from GET /v1/elections on any live node.
named_holders() {
    local n p
    for p in "${PIPES[@]}"; do
        HOLDER[$p]=- PTOK[$p]=-
    done
    for n in "${NODES[@]}"; do
        alive "$n" || continue
        if ! http_get "${HTTP[$n]}" /v1/elections || [ "$STATUS" != 200 ]; then
            continue
        fi
        for p in "${PIPES[@]}"; do
            [[ $BODY =~ \"name\":\"$p\",\"holder\":\"([a-z]+)\",\"fencing_token\":([0-9]+) ]] &&
                HOLDER[$p]=${BASH_REMATCH[1]} PTOK[$p]=${BASH_REMATCH[2]}
        done
        return 0
    done
    return 1
}

named_line() {
    local p line=""
    named_holders
    for p in "${PIPES[@]}"; do
        line+=" $p@${HOLDER[$p]}/${PTOK[$p]}"
    done
    say "pipelines (name@holder/token):$line"
}

# Polls (100 ms, bounded) until every pipeline is held, two per member, unchanged for 2 s.
named_wait_spread() {
    local i p n same last="" now
    for ((i = 0; i < (WAIT_PRIMARY + 30) * 10; i++)); do
        named_holders
        now=""
        declare -A cnt=([a]=0 [b]=0 [c]=0)
        for p in "${PIPES[@]}"; do
            now+="${HOLDER[$p]}/${PTOK[$p]} "
            [ "${HOLDER[$p]}" != - ] && cnt[${HOLDER[$p]}]=$((cnt[${HOLDER[$p]}] + 1))
        done
        if [ "${cnt[a]}" = 2 ] && [ "${cnt[b]}" = 2 ] && [ "${cnt[c]}" = 2 ] && [ "$now" = "$last" ]; then
            same=$((same + 1))
            [ "$same" -ge 20 ] && return 0
        else
            same=0
        fi
        last=$now
        ((i % 10 == 0)) && named_line
        sleep 0.1
    done
    return 1
}

start_named_node() {
    local n=$1
    "$ELECTD_BIN" --name "$n" --peers "$PEERS" --data-dir "$DIR/named/$n" \
        --listen-http "${HTTP[$n]}" --cluster-name demo-named --forward \
        --config "$DIR/named/electd.json" >>"$DIR/named/electd-$n.log" 2>&1 &
    PID[$n]=$!
}

if [ $FAILED = 0 ]; then
    echo
    echo "== part 2: named elections — ${#PIPES[@]} binlog pipelines in one group, spread over a, b, c =="
    mkdir -p "$DIR/named"
    {
        printf '{"elections": {'
        sep=""
        for p in "${PIPES[@]}"; do
            printf '%s\n  "%s": {"exec": ["%s", "run", "--source", "%s", "--sink", "%s", "--log", "%s", "--key", "binlog/%s/position", "--every", "%s", "--rate", "%s"]}' \
                "$sep" "$p" "$WORKER_BIN" "$DIR/binlog.events" "$DIR/named/sink-$p.events" \
                "$DIR/named/workers-$p.log" "$p" "$EVERY" "$RATE"
            sep=","
        done
        printf '\n}}\n'
    } >"$DIR/named/electd.json"
    echo "  config: $DIR/named/electd.json (each member declares all six; --forward: a holder that"
    echo "  does not lead relays its fenced checkpoints, PUT ...?fence=TOKEN&election=NAME)"
    for n in "${NODES[@]}"; do
        start_named_node "$n"
    done
    say "started electd a, b, c with the named pipelines"
    if named_wait_spread; then
        named_line
        say "spread: two pipelines per member"
    else
        fail "the pipelines were not spread two per member within $((WAIT_PRIMARY + 30))s"
    fi
fi

if [ $FAILED = 0 ]; then
    sleep "$P3"
    # A member that holds pipelines and does not lead the Raft group dies without warning.
    victim=""
    for n in "${NODES[@]}"; do
        node_status "$n"
        [ "$ROLE" != leader ] && victim=$n && break
    done
    named_holders
    declare -A BEFORE=() BTOK=()
    for p in "${PIPES[@]}"; do
        BEFORE[$p]=${HOLDER[$p]} BTOK[$p]=${PTOK[$p]}
    done
    say ">>> kill -9 electd on $victim (pid ${PID[$victim]}): only its pipelines may move"
    start=$(now_ms)
    kill -KILL "${PID[$victim]}"
    wait "${PID[$victim]}" 2>/dev/null
    PID[$victim]=""
    moved=0
    for ((i = 0; i < (WAIT_PRIMARY + 10) * 10; i++)); do
        named_holders
        moved=1
        for p in "${PIPES[@]}"; do
            if [ "${BEFORE[$p]}" = "$victim" ]; then
                { [ "${HOLDER[$p]}" = - ] || [ "${HOLDER[$p]}" = "$victim" ]; } && moved=0
            fi
        done
        [ $moved = 1 ] && break
        ((i % 10 == 0)) && named_line
        sleep 0.1
    done
    took=$(($(now_ms) - start))
    named_line
    if [ $moved = 1 ]; then
        say ">>> $victim's pipelines moved ${took} ms after the kill; the others kept holder and token"
        SUMMARY+=("named pipelines: kill -9 of $victim moved only its pipelines, in ${took} ms")
    else
        fail "$victim's pipelines did not move within $((WAIT_PRIMARY + 10))s"
    fi
    for p in "${PIPES[@]}"; do
        if [ "${BEFORE[$p]}" != "$victim" ] &&
            { [ "${HOLDER[$p]}" != "${BEFORE[$p]}" ] || [ "${PTOK[$p]}" != "${BTOK[$p]}" ]; }; then
            fail "pipeline $p on healthy ${BEFORE[$p]} moved or restarted (now ${HOLDER[$p]}/${PTOK[$p]})"
        fi
    done
    say "restarting electd $victim"
    start_named_node "$victim"
    sleep "$P3"
    named_line
fi

if [ -d "$DIR/named" ]; then
    say "stopping all nodes (SIGTERM, by PID)"
    cleanup
    echo
    echo "== verification of each pipeline (sink and log) =="
    for p in "${PIPES[@]}"; do
        if "$WORKER_BIN" verify --sink "$DIR/named/sink-$p.events" --log "$DIR/named/workers-$p.log" \
            >"$DIR/named/verify-$p.txt" 2>&1; then
            echo "  $p: $(tail -1 "$DIR/named/verify-$p.txt")"
        else
            cat "$DIR/named/verify-$p.txt"
            fail "pipeline $p: verification"
        fi
    done
fi
echo
echo "== summary =="
for line in "${SUMMARY[@]}"; do
    echo "  $line"
done
echo "  every process the demo started has stopped; elapsed $(elapsed)"
if [ $FAILED = 0 ]; then
    echo "  RESULT: PASS"
    if [ "$KEEP" = 1 ]; then
        echo "  logs kept in $DIR"
    else
        rm -rf "$DIR"
        echo "  (DEMO_KEEP=1 keeps the data directory and logs)"
    fi
    exit 0
fi
echo "  RESULT: FAIL — logs kept in $DIR (electd-*.log, workers.log, sink.events)"
exit 1
