#!/usr/bin/env bash
# compare_etcd.sh — measures electd and etcd 3.4 (the stack electd replaces) on this machine
# with the same method and prints tables (median, min, max over runs). Not a test: it never
# fails on time. See docs/benchmarks-etcd.md for the method and a reading of the results.
#
#   kv:       fenced writes on the leader of a 3-member cluster on loopback, through HTTP/1.1
#             with wrk: electd `PUT /v1/kv/KEY?fence=N`; etcd `POST /v3/kv/txn` on its JSON
#             gateway comparing the election key's create revision, then putting. Every
#             response is checked (electd: 200; etcd: 200 and "succeeded":true).
#   native:   for scale, etcd alone through its gRPC client (etcdctl check perf)
#   idle:     VmRSS, RssAnon and CPU of every member of an idle 3-member cluster
#   failover: kill -9 of the Raft leader -> a survivor reports a new leader (leader election
#             only; no workload, no lease of an election recipe)
#   primary:  the time to a new primary's workload: electd supervising it (--exec) against
#             etcd's lock recipe (`etcdctl lock --ttl ETCD_TTL` running it), after kill -9
#             of the primary's process (a process crash) or of its whole member (a host crash)
#
# Runs alternate electd and etcd back to back, so noise from other users of the machine
# falls on both. Default settings for both (fsync on); data in temp dirs on the disk of
# $TMPDIR.
#
# Usage: tests/bench/compare_etcd.sh [ELECTD_BINARY]     (default build/sidecar/electd)
# Environment: ONLY=kv|native|idle|failover|primary, KV_RUNS (3), KV_SECONDS (8), READ_SECONDS (5),
#              NATIVE_RUNS (1), IDLE_ROUNDS (2), IDLE_SECONDS (30), FAILOVER_RUNS (10),
#              PRIMARY_RUNS (10), ETCD_TTL (2: seconds, the lock recipe's session), SETTLE_SECONDS (3)
# Needs root only to install etcd-server, etcd-client and wrk when they are missing.
set -u -o pipefail

ELECTD=${1:-build/sidecar/electd}
ONLY=${ONLY:-}
KV_RUNS=${KV_RUNS:-3}
KV_SECONDS=${KV_SECONDS:-8}
READ_SECONDS=${READ_SECONDS:-5}
NATIVE_RUNS=${NATIVE_RUNS:-1}
IDLE_ROUNDS=${IDLE_ROUNDS:-2}
IDLE_SECONDS=${IDLE_SECONDS:-30}
FAILOVER_RUNS=${FAILOVER_RUNS:-10}
PRIMARY_RUNS=${PRIMARY_RUNS:-10}
ETCD_TTL=${ETCD_TTL:-2}
SETTLE_SECONDS=${SETTLE_SECONDS:-3}
KV_CONNS=(1 16 64)
KV_KEY=bench/pos
KV_VALUE=mysql-bin.000042:1337
ELECTION=bench-election
# Bounds of every wait, in polls of POLL_S.
POLL_S=0.01
START_TIMEOUT_S=30
FAILOVER_TIMEOUT_S=15
PRIMARY_TIMEOUT_S=30
STOP_TIMEOUT_S=3

# Messages go to the original stderr (fd 3): the failover runs send bash's own stderr to a
# file, because bash reports every member killed with -9 there.
exec 3>&2
KEEP=0 # set by die: the temp dir with the members' logs stays for a look
die() {
    echo "compare_etcd: $*" >&3
    KEEP=1
    exit 1
}

[[ -x $ELECTD ]] || die "electd binary '$ELECTD' not found (build it: cmake --build BUILD --target electd)"
ELECTD=$(realpath "$ELECTD")

# ---- tools ---------------------------------------------------------------------------------

missing=()
command -v etcd > /dev/null || missing+=(etcd-server)
command -v etcdctl > /dev/null || missing+=(etcd-client)
command -v wrk > /dev/null || missing+=(wrk)
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || die "missing ${missing[*]}; run as root to install them with apt-get"
    # The etcd-server package enables a system service; policy-rc.d or the absence of
    # systemd keeps it from starting. This script only runs the members it starts itself.
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
        > /dev/null || die "apt-get install ${missing[*]} failed"
fi
for t in curl jq ss base64 awk; do
    command -v $t > /dev/null || die "needs $t"
done
export ETCDCTL_API=3

# ---- processes: everything started here is tracked by PID and stopped by the trap ----------

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/compare_etcd.XXXXXX") || die "mktemp failed"
PIDS=()

stop_pids() { # TERM, bounded wait, then KILL; only PIDs this script started
    local pid live n
    for pid in "$@"; do kill -TERM "$pid" 2> /dev/null; done
    for ((n = 0; n < STOP_TIMEOUT_S * 100; n++)); do
        live=0
        for pid in "$@"; do kill -0 "$pid" 2> /dev/null && live=1; done
        ((live)) || break
        sleep $POLL_S
    done
    for pid in "$@"; do kill -0 "$pid" 2> /dev/null && kill -KILL "$pid" 2> /dev/null; done
    for pid in "$@"; do wait "$pid" 2> /dev/null; done
    return 0
}

cleanup() {
    ((${#PIDS[@]})) && stop_pids "${PIDS[@]}"
    # The primary mode's workloads: a candidate's command outlives its etcdctl.
    local line
    for f in "$ROOT"/pstart-*; do
        [[ -f $f ]] || continue
        while read -r line; do kill -KILL "${line##* }" 2> /dev/null; done < "$f"
    done
    if ((KEEP)); then
        echo "compare_etcd: kept $ROOT" >&3
    else
        rm -rf "$ROOT"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A USED_PORTS
# Picks a port below the ephemeral range that nothing uses; sets PORT.
pick_port() {
    local n p
    for ((n = 0; n < 500; n++)); do
        p=$((20000 + RANDOM % 12000))
        [[ -n ${USED_PORTS[$p]:-} ]] && continue
        if [[ -z $(ss -Htan "( sport = :$p )") ]]; then
            USED_PORTS[$p]=1
            PORT=$p
            return 0
        fi
    done
    die "no free port found"
}

now_ns() { date +%s%N; }

# ---- electd cluster ------------------------------------------------------------------------

E_NAMES=(a b c)
E_PEER=()
E_HTTP=()
E_PID=()
E_DIR=()
E_PEERS=
E_EXTRA=() # more arguments for every member (the primary mode's workload)

electd_start_member() { # index
    local i=$1
    "$ELECTD" --name "${E_NAMES[i]}" --peers "$E_PEERS" --data-dir "${E_DIR[i]}" \
        --listen-peer "127.0.0.1:${E_PEER[i]}" --listen-http "127.0.0.1:${E_HTTP[i]}" \
        "${E_EXTRA[@]}" >> "${E_DIR[i]}.log" 2>&1 &
    E_PID[i]=$!
    PIDS+=($!)
}

electd_cluster_start() { # tag
    local i
    E_PEERS=
    for i in 0 1 2; do
        pick_port
        E_PEER[i]=$PORT
        pick_port
        E_HTTP[i]=$PORT
        E_DIR[i]=$ROOT/$1-electd-${E_NAMES[i]}
        E_PEERS+="${E_PEERS:+,}${E_NAMES[i]}=127.0.0.1:${E_PEER[i]}"
    done
    for i in 0 1 2; do electd_start_member $i; done
}

electd_cluster_stop() {
    stop_pids "${E_PID[@]}"
}

# Leader name as member i sees it (empty if none or unreachable).
electd_leader_of() {
    local out
    out=$(curl -s -m 0.5 "http://127.0.0.1:${E_HTTP[$1]}/v1/status") || return 0
    [[ $out =~ \"leader\":\{[^}]*\"name\":\"([^\"]+)\" ]] && echo "${BASH_REMATCH[1]}"
    return 0
}

# Waits until all three members name the same leader; sets E_LEADER (index).
electd_wait_leader() {
    local n i l first ok
    for ((n = 0; n < START_TIMEOUT_S * 20; n++)); do
        ok=1
        first=
        for i in 0 1 2; do
            l=$(electd_leader_of $i)
            [[ -n $l && (-z $first || $l == "$first") ]] || ok=0
            first=$l
        done
        if ((ok)); then
            for i in 0 1 2; do [[ ${E_NAMES[i]} == "$first" ]] && E_LEADER=$i; done
            return 0
        fi
        sleep 0.05
    done
    die "electd cluster has no agreed leader after ${START_TIMEOUT_S}s (logs in $ROOT)"
}

# ---- etcd cluster --------------------------------------------------------------------------

D_NAMES=(m1 m2 m3)
D_PEER=()
D_CLIENT=()
D_PID=()
D_DIR=()
D_ID=()
D_INITIAL=
D_TOKEN=

etcd_start_member() { # index; default settings apart from addresses and names
    local i=$1
    etcd --name "${D_NAMES[i]}" --data-dir "${D_DIR[i]}" \
        --listen-client-urls "http://127.0.0.1:${D_CLIENT[i]}" \
        --advertise-client-urls "http://127.0.0.1:${D_CLIENT[i]}" \
        --listen-peer-urls "http://127.0.0.1:${D_PEER[i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${D_PEER[i]}" \
        --initial-cluster "$D_INITIAL" --initial-cluster-state new \
        --initial-cluster-token "$D_TOKEN" >> "${D_DIR[i]}.log" 2>&1 &
    D_PID[i]=$!
    PIDS+=($!)
}

etcd_cluster_start() { # tag
    local i
    D_INITIAL=
    D_TOKEN=compare-$$-$1
    for i in 0 1 2; do
        pick_port
        D_PEER[i]=$PORT
        pick_port
        D_CLIENT[i]=$PORT
        D_DIR[i]=$ROOT/$1-etcd-${D_NAMES[i]}
        D_INITIAL+="${D_INITIAL:+,}${D_NAMES[i]}=http://127.0.0.1:${D_PEER[i]}"
    done
    for i in 0 1 2; do etcd_start_member $i; done
}

etcd_cluster_stop() {
    stop_pids "${D_PID[@]}"
}

# "member_id leader_id" as member i reports them through the gateway (empty if unreachable).
etcd_status_of() {
    local out
    out=$(curl -s -m 0.5 -X POST "http://127.0.0.1:${D_CLIENT[$1]}/v3/maintenance/status" -d '{}') ||
        return 0
    [[ $out =~ \"member_id\":\"([0-9]+)\" ]] || return 0
    local id=${BASH_REMATCH[1]}
    [[ $out =~ \"leader\":\"([0-9]+)\" ]] && echo "$id ${BASH_REMATCH[1]}"
    return 0
}

# Waits until all three members name the same leader; sets D_LEADER (index) and D_ID[].
etcd_wait_leader() {
    local n i s first ok
    for ((n = 0; n < START_TIMEOUT_S * 20; n++)); do
        ok=1
        first=
        for i in 0 1 2; do
            s=$(etcd_status_of $i)
            if [[ -z $s ]]; then
                ok=0
                continue
            fi
            D_ID[i]=${s% *}
            s=${s#* }
            [[ $s != 0 && (-z $first || $s == "$first") ]] || ok=0
            first=$s
        done
        if ((ok)); then
            for i in 0 1 2; do [[ ${D_ID[i]} == "$first" ]] && D_LEADER=$i; done
            return 0
        fi
        sleep 0.05
    done
    die "etcd cluster has no agreed leader after ${START_TIMEOUT_S}s (logs in $ROOT)"
}

# ---- statistics ----------------------------------------------------------------------------

# stats V1 V2 ... -> "median min max" (median of an even count: mean of the middle two)
stats() {
    if (($# == 0)); then
        echo "- - -"
        return
    fi
    printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
        if (NR == 0) { print "- - -"; exit }
        m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
        printf "%s %s %s\n", m, v[1], v[NR] }'
}

fmt() { # format "median min max" with printf format $1
    local s
    read -r -a s <<< "$2"
    if [[ ${s[0]} == - ]]; then
        echo "- | - | -"
    else
        # shellcheck disable=SC2059 # the format is one of this file's constants
        printf "$1 | $1 | $1" "${s[0]}" "${s[1]}" "${s[2]}"
    fi
}

load() { awk '{print $1" "$2" "$3}' /proc/loadavg; }

# Mean latency of a synchronous 4 KiB write (O_DSYNC, like a WAL commit) in the data dirs'
# file system: what both systems pay per fsync at this moment.
dsync_ms() {
    local f=$ROOT/dsync.probe
    dd if=/dev/zero of="$f" bs=4k count=300 oflag=dsync 2>&1 |
        awk '/copied/ {for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) t = $(i-1); printf "%.2f", t / 300 * 1000}'
    rm -f "$f"
}

# ---- machine -------------------------------------------------------------------------------

echo "# electd vs etcd on this machine"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- nproc: $(nproc); CPU: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "- memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "- data dirs: $ROOT on $(df -T "$ROOT" | awk 'NR==2 {print $1" ("$2")"}')"
echo "- electd: $ELECTD; etcd: $(etcd --version | awk '/etcd Version/ {print $3}')" \
    "($(etcd --version | awk '/Go Version/ {print $3}')); wrk: $(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
echo "- load average at start: $(load)"

# ---- kv ------------------------------------------------------------------------------------

# Runs wrk once; appends "rps p99_ms ok bad non2xx sockerr" to the file $1.
run_wrk() { # outfile seconds conns script url
    local out=$1 d=$2 c=$3 script=$4 url=$5 t=1 res
    ((c > 1)) && t=2
    res=$(wrk -t $t -c "$c" -d "${d}s" --timeout 5s --latency -s "$script" "$url" 2>&1)
    echo "$res" >> "$out.raw"
    echo "$res" | awk '
        function ms(s) {
            if (s ~ /us$/) return substr(s, 1, length(s)-2) / 1000
            if (s ~ /ms$/) return substr(s, 1, length(s)-2) + 0
            if (s ~ /s$/) return substr(s, 1, length(s)-1) * 1000
            return s + 0 }
        /Requests\/sec:/ { rps = $2 }
        /^ +99%/ { p99 = ms($2) }
        /^CHECK/ { split($2, a, "="); ok = a[2]; split($3, b, "="); bad = b[2] }
        /Non-2xx/ { non2xx = $NF }
        /Socket errors/ { gsub(",", ""); err = $4 + $6 + $8 + $10 }
        END { printf "%s %s %s %s %d %d\n", rps, p99, ok, bad, non2xx, err }' >> "$out"
}

# The checking half of both wrk scripts: counts every response as good or bad per thread and
# sums the threads at the end, so a run in which any request failed is visible.
lua_check() { # lua condition on status and body
    cat << EOF
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0 end
function response(status, headers, body)
  if $1 then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
  io.write(string.format("CHECK ok=%d bad=%d\n", o, b))
end
EOF
}

kv_electd_round() { # round
    local r=$1 token code c
    electd_cluster_start "kv$r"
    electd_wait_leader
    local http=${E_HTTP[E_LEADER]}
    token=$(curl -s -m 2 "http://127.0.0.1:$http/v1/status" | jq -r .fencing_token)
    [[ $token =~ ^[0-9]+$ ]] || die "electd: no fencing token"
    # The fence is checked: a token that is not the current epoch is refused.
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 -X PUT --data "$KV_VALUE" \
        "http://127.0.0.1:$http/v1/kv/$KV_KEY?fence=$((token + 1))")
    [[ $code == 409 ]] || die "electd: a wrong fence answered $code, not 409"
    {
        echo "wrk.method = \"PUT\""
        echo "wrk.body = \"$KV_VALUE\""
        lua_check 'status == 200 and body:find("\"mod_revision\"", 1, true)'
    } > "$ROOT/electd.lua"
    for c in "${KV_CONNS[@]}"; do
        run_wrk "$ROOT/kv-electd-$c" "$KV_SECONDS" "$c" "$ROOT/electd.lua" \
            "http://127.0.0.1:$http/v1/kv/$KV_KEY?fence=$token"
    done
    # The floor of the HTTP path: a local read that involves no other member and no disk.
    lua_check 'status == 200 and body:find("\"value\"", 1, true)' > "$ROOT/electd-read.lua"
    for c in "${KV_CONNS[@]}"; do
        run_wrk "$ROOT/read-electd-$c" "$READ_SECONDS" "$c" "$ROOT/electd-read.lua" \
            "http://127.0.0.1:$http/v1/kv/$KV_KEY?stale"
    done
    electd_cluster_stop
}

kv_etcd_round() { # round
    local r=$1 ep key rev kb pk v body wrong c n elect_pid
    etcd_cluster_start "kv$r"
    etcd_wait_leader
    ep=127.0.0.1:${D_CLIENT[D_LEADER]}
    # A primary of the etcd election recipe: campaign, hold the key under a kept-alive lease.
    etcdctl --endpoints="$ep" elect "$ELECTION" primary > "$ROOT/elect-$r.out" 2>&1 &
    elect_pid=$!
    PIDS+=($!)
    for ((n = 0; n < START_TIMEOUT_S * 100; n++)); do
        key=$(head -n 1 "$ROOT/elect-$r.out" 2> /dev/null)
        [[ $key == "$ELECTION/"* ]] && break
        sleep $POLL_S
    done
    [[ $key == "$ELECTION/"* ]] || die "etcd: etcdctl elect did not win"
    rev=$(etcdctl --endpoints="$ep" get "$key" -w json | jq -r '.kvs[0].create_revision')
    [[ $rev =~ ^[0-9]+$ ]] || die "etcd: no create revision for $key"
    kb=$(printf %s "$key" | base64 -w0)
    pk=$(printf %s "$KV_KEY" | base64 -w0)
    v=$(printf %s "$KV_VALUE" | base64 -w0)
    body="{\"compare\":[{\"key\":\"$kb\",\"target\":\"CREATE\",\"result\":\"EQUAL\","
    body+="\"create_revision\":\"$rev\"}],\"success\":[{\"requestPut\":{\"key\":\"$pk\","
    body+="\"value\":\"$v\"}}]}"
    # The compare is checked: another create revision does not put.
    wrong=$(curl -s -m 2 -X POST "http://$ep/v3/kv/txn" -d "${body/\"$rev\"/\"$((rev + 1))\"}")
    [[ $wrong == *'"header"'* && $wrong != *'"succeeded":true'* ]] ||
        die "etcd: a wrong create revision answered $wrong"
    {
        echo "wrk.method = \"POST\""
        echo "wrk.headers[\"Content-Type\"] = \"application/json\""
        echo "wrk.body = '$body'"
        lua_check 'status == 200 and body:find("\"succeeded\":true", 1, true)'
    } > "$ROOT/etcd.lua"
    for c in "${KV_CONNS[@]}"; do
        run_wrk "$ROOT/kv-etcd-$c" "$KV_SECONDS" "$c" "$ROOT/etcd.lua" "http://$ep/v3/kv/txn"
    done
    {
        echo "wrk.method = \"POST\""
        echo "wrk.headers[\"Content-Type\"] = \"application/json\""
        echo "wrk.body = '{\"key\":\"$pk\",\"serializable\":true}'"
        lua_check 'status == 200 and body:find("\"kvs\"", 1, true)'
    } > "$ROOT/etcd-read.lua"
    for c in "${KV_CONNS[@]}"; do
        run_wrk "$ROOT/read-etcd-$c" "$READ_SECONDS" "$c" "$ROOT/etcd-read.lua" \
            "http://$ep/v3/kv/range"
    done
    stop_pids "$elect_pid"
    etcd_cluster_stop
}

wrk_table() { # kind title
    local kind=$1 sys c rps p99 ok bad a b o x n e
    echo
    echo "## $2"
    echo
    echo "| system | conns | runs | req/s median | req/s min | req/s max | p99 ms median | p99 ms min | p99 ms max | ok | failed |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for c in "${KV_CONNS[@]}"; do
        for sys in electd etcd; do
            local f=$ROOT/$kind-$sys-$c
            [[ -s $f ]] || continue
            rps=()
            p99=()
            ok=0
            bad=0
            while read -r a b o x n e; do
                rps+=("$a")
                p99+=("$b")
                ok=$((ok + ${o:-0}))
                bad=$((bad + ${x:-0} + e))
            done < "$f"
            echo "| $sys | $c | ${#rps[@]} | $(fmt %.0f "$(stats "${rps[@]}")") |" \
                "$(fmt %.2f "$(stats "${p99[@]}")") | $ok | $bad |"
        done
    done
    echo
    echo "req/s of each run in order (run r of electd and of etcd ran back to back):"
    for c in "${KV_CONNS[@]}"; do
        echo "- $c conns: electd $(awk '{printf "%s%.0f", (NR>1 ? " " : ""), $1}' "$ROOT/$kind-electd-$c");" \
            "etcd $(awk '{printf "%s%.0f", (NR>1 ? " " : ""), $1}' "$ROOT/$kind-etcd-$c")"
    done
}

if [[ -z $ONLY || $ONLY == kv ]]; then
    for ((r = 1; r <= KV_RUNS; r++)); do
        echo "- kv round $r: load average $(load); synchronous 4 KiB write $(dsync_ms) ms"
        kv_electd_round $r
        kv_etcd_round $r
    done
    echo "- kv: load average after: $(load); synchronous 4 KiB write $(dsync_ms) ms"
    wrk_table kv "Fenced KV writes on the leader (wrk, HTTP/1.1, $KV_SECONDS s per run, $KV_RUNS runs per row)"
    echo
    echo "ok/failed: every response checked by the wrk script over all runs — electd: 200 with a"
    echo "revision; etcd: 200 with \"succeeded\":true; failed includes socket errors."
    wrk_table read "For scale: local reads on the same leader, no consensus, no disk ($READ_SECONDS s per run; electd GET ?stale, etcd serializable range)"
fi

# ---- etcd's own client path ----------------------------------------------------------------

# For scale only, etcd alone: its gRPC client path without the JSON gateway, as etcd's own
# `etcdctl check perf --load=l` drives it (500 clients, plain puts of fresh keys, 60 s, on the
# leader). Not the same operation (no compare) and not the same client as the tables above.
native_etcd() {
    local res
    etcd_cluster_start "native$1"
    etcd_wait_leader
    res=$(timeout 120 etcdctl --endpoints="127.0.0.1:${D_CLIENT[D_LEADER]}" check perf --load=l 2>&1 |
        tr '\r' '\n')
    echo "$res" >> "$ROOT/native.raw"
    echo "$res" | awk '/Throughput/ {for (i = 1; i <= NF; i++) if ($i == "writes/s") w = $(i-1)}
        /Slowest request/ {s = $(NF)} END {printf "%s %s\n", w, s}' >> "$ROOT/native"
    etcd_cluster_stop
}

if [[ -z $ONLY || $ONLY == native ]] && ((NATIVE_RUNS > 0)); then
    for ((r = 1; r <= NATIVE_RUNS; r++)); do
        echo "- etcd native round $r: load average $(load)"
        native_etcd $r
    done
    echo
    echo "## For scale: etcd through its gRPC client (etcdctl check perf --load=l: 500 clients, plain puts, 60 s, on the leader)"
    echo
    echo "| runs | writes/s median | min | max | slowest request of each run |"
    echo "|---:|---:|---:|---:|---|"
    w=()
    mapfile -t w < <(awk '{print $1}' "$ROOT/native")
    echo "| ${#w[@]} | $(fmt %.0f "$(stats "${w[@]}")") |" \
        "$(awk '{printf "%s%s", (NR>1 ? ", " : ""), $2}' "$ROOT/native") |"
fi

# ---- idle ----------------------------------------------------------------------------------

# kB of field $2 in /proc/$1/status
status_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
# utime+stime ticks of $1
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }

idle_measure() { # system pids...
    local sys=$1 pid i=0 t0=() t1 hz
    shift
    hz=$(getconf CLK_TCK)
    for pid in "$@"; do t0+=("$(cpu_ticks "$pid")"); done
    sleep "$IDLE_SECONDS"
    for pid in "$@"; do
        t1=$(cpu_ticks "$pid")
        echo "$(status_kb "$pid" VmRSS) $(status_kb "$pid" RssAnon)" \
            "$(awk -v a="${t0[i]}" -v b="$t1" -v h="$hz" -v s="$IDLE_SECONDS" \
                'BEGIN {printf "%.2f", (b - a) / h / s * 100}')" >> "$ROOT/idle-$sys"
        i=$((i + 1))
    done
}

idle_table() {
    local sys rss anon cpu a b c
    echo
    echo "## Idle members (3-member cluster idle ${IDLE_SECONDS} s, $IDLE_ROUNDS rounds, every member)"
    echo
    echo "| system | members | VmRSS MiB median | min | max | RssAnon MiB median | min | max | CPU % of a core median | min | max |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for sys in electd etcd; do
        [[ -s $ROOT/idle-$sys ]] || continue
        rss=()
        anon=()
        cpu=()
        while read -r a b c; do
            rss+=("$(awk -v k="$a" 'BEGIN {printf "%.2f", k/1024}')")
            anon+=("$(awk -v k="$b" 'BEGIN {printf "%.2f", k/1024}')")
            cpu+=("$c")
        done < "$ROOT/idle-$sys"
        echo "| $sys | ${#rss[@]} | $(fmt %.1f "$(stats "${rss[@]}")") |" \
            "$(fmt %.1f "$(stats "${anon[@]}")") | $(fmt %.2f "$(stats "${cpu[@]}")") |"
    done
    echo
    echo "Per member (VmRSS / RssAnon MiB):"
    for sys in electd etcd; do
        [[ -s $ROOT/idle-$sys ]] || continue
        echo "- $sys: $(awk '{printf "%s%.1f/%.1f", (NR>1 ? ", " : ""), $1/1024, $2/1024}' "$ROOT/idle-$sys")"
    done
}

if [[ -z $ONLY || $ONLY == idle ]]; then
    echo "- idle: load average before: $(load)"
    for ((r = 1; r <= IDLE_ROUNDS; r++)); do
        electd_cluster_start "idle$r"
        electd_wait_leader
        idle_measure electd "${E_PID[@]}"
        electd_cluster_stop
        etcd_cluster_start "idle$r"
        etcd_wait_leader
        idle_measure etcd "${D_PID[@]}"
        etcd_cluster_stop
    done
    echo "- idle: load average after: $(load)"
    idle_table
fi

# ---- failover ------------------------------------------------------------------------------

# One electd run: kill -9 the leader, poll the survivors every 10 ms (one curl for both, as
# one etcdctl for both below) until one names another member as leader; appends "ms polls"
# to $ROOT/fo-electd; restarts the killed member.
failover_electd() {
    local k=$E_LEADER t0 t1 n i out found='' urls=()
    for i in 0 1 2; do ((i == k)) || urls+=("http://127.0.0.1:${E_HTTP[i]}/v1/status"); done
    t0=$(now_ns)
    kill -KILL "${E_PID[k]}"
    for ((n = 1; n <= FAILOVER_TIMEOUT_S * 100; n++)); do
        out=$(curl -s -m 0.5 "${urls[@]}")
        while [[ $out =~ \"leader\":\{[^}]*\"name\":\"([^\"]+)\" ]]; do
            out=${out/"${BASH_REMATCH[0]}"/}
            if [[ ${BASH_REMATCH[1]} != "${E_NAMES[k]}" ]]; then
                found=${BASH_REMATCH[1]}
                break 2
            fi
        done
        sleep $POLL_S
    done
    t1=$(now_ns)
    wait "${E_PID[k]}" 2> /dev/null
    if [[ -n $found ]]; then
        echo "$(((t1 - t0) / 1000000)) $n" >> "$ROOT/fo-electd"
    else
        echo "timeout $n" >> "$ROOT/fo-electd"
    fi
    electd_start_member "$k"
    electd_wait_leader
}

# The same for etcd, polling `etcdctl endpoint status` on the two survivors.
failover_etcd() {
    local k=$D_LEADER t0 t1 n out found='' eps=() i
    for i in 0 1 2; do ((i == k)) || eps+=("127.0.0.1:${D_CLIENT[i]}"); done
    t0=$(now_ns)
    kill -KILL "${D_PID[k]}"
    for ((n = 1; n <= FAILOVER_TIMEOUT_S * 100; n++)); do
        out=$(etcdctl --endpoints="${eps[0]},${eps[1]}" --dial-timeout=500ms \
            --command-timeout=500ms endpoint status -w json 2> /dev/null)
        while [[ $out =~ \"leader\":([0-9]+) ]]; do
            out=${out/"${BASH_REMATCH[0]}"/}
            if [[ ${BASH_REMATCH[1]} != 0 && ${BASH_REMATCH[1]} != "${D_ID[k]}" ]]; then
                found=${BASH_REMATCH[1]}
                break 2
            fi
        done
        sleep $POLL_S
    done
    t1=$(now_ns)
    wait "${D_PID[k]}" 2> /dev/null
    if [[ -n $found ]]; then
        echo "$(((t1 - t0) / 1000000)) $n" >> "$ROOT/fo-etcd"
    else
        echo "timeout $n" >> "$ROOT/fo-etcd"
    fi
    etcd_start_member "$k"
    etcd_wait_leader
}

# Median time of one poll of the survivors (both members), for the resolution column.
poll_cost_ms() { # system
    local t0 n
    t0=$(now_ns)
    for ((n = 0; n < 20; n++)); do
        if [[ $1 == electd ]]; then
            curl -s -m 0.5 "http://127.0.0.1:${E_HTTP[0]}/v1/status" \
                "http://127.0.0.1:${E_HTTP[1]}/v1/status" > /dev/null
        else
            etcdctl --endpoints="127.0.0.1:${D_CLIENT[0]},127.0.0.1:${D_CLIENT[1]}" \
                --dial-timeout=500ms --command-timeout=500ms endpoint status -w json > /dev/null
        fi
    done
    awk -v a="$t0" -v b="$(now_ns)" 'BEGIN {printf "%.1f", (b - a) / 1e6 / 20}'
}

# "runs | median | min | max | timeouts" cells of a file of runs, one "ms ..." or "timeout"
# per line.
runs_cells() { # file
    local ms v=() timeouts=0
    while read -r ms _; do
        if [[ $ms == timeout ]]; then
            timeouts=$((timeouts + 1))
        else
            v+=("$ms")
        fi
    done < "$1"
    echo "${#v[@]} | $(fmt %.0f "$(stats "${v[@]}")") | $timeouts"
}

failover_table() {
    local sys
    echo
    echo "## Leader failover (kill -9 of the Raft leader -> a survivor reports a new leader; $FAILOVER_RUNS runs; default timeouts: heartbeat 100 ms, election 1000 ms)"
    echo
    echo "| system | runs | median ms | min ms | max ms | timeouts | one poll of both survivors, ms |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for sys in electd etcd; do
        [[ -s $ROOT/fo-$sys ]] || continue
        echo "| $sys | $(runs_cells "$ROOT/fo-$sys") | $(cat "$ROOT/poll-$sys") |"
    done
    echo
    echo "Runs in order (ms):"
    for sys in electd etcd; do
        [[ -s $ROOT/fo-$sys ]] && echo "- $sys: $(awk '{printf "%s%s", (NR>1 ? " " : ""), $1}' "$ROOT/fo-$sys")"
    done
}

# ---- primary failover: the time to a new primary's workload ----------------------------------
#
# Each system runs a workload on one member at a time, as its users would: electd supervises
# it (--exec); on the etcd side each member has a candidate running etcd's lock recipe,
# `etcdctl lock --ttl ETCD_TTL` with the workload as its command (a session lease kept alive,
# the lock key under it; the election recipe, concurrency.Election, waits on the same
# session the same way: `etcdctl elect` has no --ttl, its session lasts 60 s). Each
# workload appends "ns member pid" to a file when it starts. Two kinds of crash, each
# PRIMARY_RUNS times per system, alternating systems:
#   process: kill -9 of the primary's process (electd; etcd's candidate, etcdctl, and its
#            workload: the program holding the lock is the workload) on a host that lives;
#   host:    kill -9 of everything of the primary's member at once (electd, its shim and the
#            workload; the etcd member, the candidate and the workload).
# Time: from the kill to the successor's workload's line.

P_NAMES=()

# The newest line of a start file: "ns member pid".
last_start() { tail -n 1 "$1" 2> /dev/null; }

# Waits until the start file has a line from another member than $2 after line $3; prints
# its ns or "timeout".
wait_successor() { # file member lines_before
    local n line
    for ((n = 0; n < PRIMARY_TIMEOUT_S * 100; n++)); do
        line=$(tail -n +"$(($3 + 1))" "$1" 2> /dev/null | awk -v m="$2" '$2 != m {print; exit}')
        if [[ -n $line ]]; then
            echo "${line%% *}"
            return 0
        fi
        sleep $POLL_S
    done
    echo timeout
}

# Waits until a workload runs (a line in the file whose pid is alive); prints "member pid".
wait_primary() { # file
    local n line
    for ((n = 0; n < START_TIMEOUT_S * 100; n++)); do
        line=$(last_start "$1")
        if [[ -n $line ]] && kill -0 "${line##* }" 2> /dev/null; then
            echo "${line#* }"
            return 0
        fi
        sleep $POLL_S
    done
    die "no workload running after ${START_TIMEOUT_S}s ($1)"
}

C_PID=()
etcd_candidate_start() { # index
    local i=$1
    etcdctl --endpoints="127.0.0.1:${D_CLIENT[i]}" lock --ttl "$ETCD_TTL" bench-lock -- \
        /bin/sh -c 'echo "$(date +%s%N) '"${D_NAMES[i]}"' $$" >> "$0"; exec sleep 100000' \
        "$ROOT/pstart-etcd" >> "${D_DIR[i]}.candidate.log" 2>&1 &
    C_PID[i]=$!
    PIDS+=($!)
}

primary_run() { # system crash
    local sys=$1 crash=$2 file=$ROOT/pstart-$1 who pid k i lines t0 t1 led=''
    read -r who pid <<< "$(wait_primary "$file")"
    lines=$(wc -l < "$file")
    if [[ $sys == electd ]]; then
        for i in 0 1 2; do [[ ${E_NAMES[i]} == "$who" ]] && k=$i; done
        local shim
        shim=$(ps -o ppid= -p "$pid" | tr -d ' ')
        t0=$(now_ns)
        if [[ $crash == process ]]; then
            kill -KILL "${E_PID[k]}"
        else
            # The shim first: it must not live to see electd die and announce a released
            # lease (the process-crash path) in the microseconds between the signals.
            kill -KILL "$shim" "$pid" "${E_PID[k]}"
        fi
    else
        for i in 0 1 2; do [[ ${D_NAMES[i]} == "$who" ]] && k=$i; done
        etcd_wait_leader
        ((D_LEADER == k)) && led=" (its etcd member led)"
        t0=$(now_ns)
        if [[ $crash == process ]]; then
            kill -KILL "${C_PID[k]}" "$pid"
        else
            kill -KILL "${D_PID[k]}" "${C_PID[k]}" "$pid"
        fi
    fi
    echo "primary: $sys $crash crash of $who (pid $pid)" >&3
    t1=$(wait_successor "$file" "$who" "$lines")
    if [[ $t1 == timeout ]]; then
        echo "timeout" >> "$ROOT/pf-$sys-$crash"
    else
        echo "$(((t1 - t0) / 1000000))$led" >> "$ROOT/pf-$sys-$crash"
    fi
    # The killed parts come back (a workload left behind by a killed candidate is killed).
    kill -KILL "$pid" 2> /dev/null
    if [[ $sys == electd ]]; then
        wait "${E_PID[k]}" 2> /dev/null
        electd_start_member "$k"
        electd_wait_leader
    else
        wait "${C_PID[k]}" 2> /dev/null
        if [[ $crash == host ]]; then
            wait "${D_PID[k]}" 2> /dev/null
            etcd_start_member "$k"
            etcd_wait_leader
        fi
        etcd_candidate_start "$k"
        # Waiting candidates start afresh: with a short TTL a waiter's session can lapse
        # across an etcd leader change, and etcdctl then waits on forever without noticing
        # (its key is gone, no lock will ever come). The holder is left alone; the killed
        # waiters' keys expire within ETCD_TTL, less than the settling time.
        read -r who pid <<< "$(wait_primary "$file")"
        for i in 0 1 2; do
            [[ ${D_NAMES[i]} == "$who" || $i == "$k" ]] && continue
            kill -KILL "${C_PID[i]}" 2> /dev/null
            wait "${C_PID[i]}" 2> /dev/null
            etcd_candidate_start "$i"
        done
    fi
}

primary_table() {
    local sys crash
    echo
    echo "## Primary failover (kill -9 -> the successor's workload started; $PRIMARY_RUNS runs per row; default timeouts; etcd's lock recipe with --ttl $ETCD_TTL)"
    echo
    echo "| system | crash | runs | median ms | min ms | max ms | timeouts |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for crash in process host; do
        for sys in electd etcd; do
            [[ -s $ROOT/pf-$sys-$crash ]] || continue
            echo "| $sys | $crash | $(runs_cells "$ROOT/pf-$sys-$crash") |"
        done
    done
    echo
    echo "Runs in order (ms):"
    for crash in process host; do
        for sys in electd etcd; do
            [[ -s $ROOT/pf-$sys-$crash ]] &&
                echo "- $sys, $crash crash: $(paste -sd ',' "$ROOT/pf-$sys-$crash" | sed 's/,/, /g')"
        done
    done
}

if [[ -z $ONLY || $ONLY == primary ]]; then
    echo "- primary: load average before: $(load)"
    : > "$ROOT/pstart-electd"
    : > "$ROOT/pstart-etcd"
    E_EXTRA=(--exec -- /bin/sh -c 'echo "$(date +%s%N) $ELECTD_NODE_NAME $$" >> "$0"; exec sleep 100000'
        "$ROOT/pstart-electd")
    electd_cluster_start pf
    etcd_cluster_start pf
    electd_wait_leader
    etcd_wait_leader
    for i in 0 1 2; do etcd_candidate_start $i; done
    for crash in process host; do
        for ((r = 1; r <= PRIMARY_RUNS; r++)); do
            sleep "$SETTLE_SECONDS"
            primary_run electd "$crash" 2>> "$ROOT/primary.stderr"
            sleep "$SETTLE_SECONDS"
            primary_run etcd "$crash" 2>> "$ROOT/primary.stderr"
        done
    done
    stop_pids "${C_PID[@]}"
    electd_cluster_stop
    etcd_cluster_stop
    E_EXTRA=()
    echo "- primary: load average after: $(load)"
    primary_table
fi

if [[ -z $ONLY || $ONLY == failover ]]; then
    echo "- failover: load average before: $(load)"
    electd_cluster_start fo
    etcd_cluster_start fo
    electd_wait_leader
    etcd_wait_leader
    poll_cost_ms electd > "$ROOT/poll-electd"
    poll_cost_ms etcd > "$ROOT/poll-etcd"
    for ((r = 1; r <= FAILOVER_RUNS; r++)); do
        # A member that just restarted must be caught up and past its start before the next
        # kill, or the run would measure the restart instead of the election.
        sleep "$SETTLE_SECONDS"
        failover_electd 2>> "$ROOT/failover.stderr"
        sleep "$SETTLE_SECONDS"
        failover_etcd 2>> "$ROOT/failover.stderr"
    done
    electd_cluster_stop
    etcd_cluster_stop
    echo "- failover: load average after: $(load)"
    failover_table
fi
