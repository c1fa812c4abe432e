#!/bin/bash
# tests/containers/kube_play.sh — deploy/k8s's StatefulSet pod template under `podman play
# kube`: one Pod per member derived by kube_pods.py (what it changes for one host is listed
# there), the worker container running the test worker under the template's gate, electd
# with the template's hooks (gate-hold.sh, k8s-label.sh against api_stub.py). Checks:
#   - the probes' paths answer 200 on every member (/healthz, /readyz), and podman's health
#     check made from the liveness probe passes;
#   - the gate starts exactly one worker, on the leader; the labelling hook PATCHed that pod
#     with electd-role=primary and the service account's token;
#   - deleting the primary's pod as Kubernetes would (the template's preStop, then SIGTERM):
#     the preStop's transfer alone started the successor, after the gate-hold hook had the
#     worker stop gracefully, within the handover bound, labelled primary;
#   - `podman kill` of the new primary's electd container: the gate stops its worker on its
#     own (electd is gone, the lease runs out) and another member's worker starts;
#   - the overlap checker clean over the whole run.
# Usage: kube_play.sh SOURCE_DIR TESTWORKER EVENTS_TOOL
# Env:   ELECTD_IMAGE, PODMAN_FLAGS as container_failover.sh; KUBE_TEST_PORT (default 27201:
#        six ports from it, and the stub's at +9); KUBE_ULIMITS (default "nofile=4096:4096
#        nproc=4096:4096": `podman play kube` has no --ulimit, so the limits a constrained host
#        needs go into a containers.conf of this run, CONTAINERS_CONF; "none" for none).
#        Exit 77 (skipped) without podman, root or the image.
set -euo pipefail

src=$1
testworker=$2
tool=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/containers/common.sh
. "$(dirname "$0")/common.sh"

command -v podman >/dev/null 2>&1 || skip "podman is not installed (sh deploy/install-deps.sh --containers)"
[ "$(id -u)" -eq 0 ] || skip "needs root (the image is in rootful podman's storage)"
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is missing"
version=$(sed -n 's/^project(electd VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
image="${ELECTD_IMAGE:-electd:$version}"
# shellcheck disable=SC2086
pm() { podman ${PODMAN_FLAGS:-} "$@"; }
# shellcheck disable=SC2086
timeout 30 podman ${PODMAN_FLAGS:-} image exists "$image" || skip "no image $image (make image)"

HANDOVER_BOUND_MS=2000 # gate-hold's stop through the gate (100 ms polls) + TimeoutNow + gate poll
base="${KUBE_TEST_PORT:-27201}"
stub_port=$((base + 9))
for p in $(seq "$base" $((base + 5))) "$stub_port"; do
    if ss -Hltn "sport = :$p" | grep -q .; then
        echo "FAIL: port $p is in use (set KUBE_TEST_PORT)"
        exit 1
    fi
done
http_port() { echo $((base + 2 * ${1#binlog-} + 1)); }

tmp=$(mktemp -d /tmp/electd-kube.XXXXXX)
chmod 0755 "$tmp"
mkdir -m 0777 "$tmp/events" # the pods run as uid 10001
events="$tmp/events/events"
install -m 0666 /dev/null "$events"
mkdir "$tmp/sa"
token="sa-token-$$"
printf '%s' "$token" >"$tmp/sa/token"
printf 'default' >"$tmp/sa/namespace"
: >"$tmp/sa/ca.crt"
chmod 0644 "$tmp/sa"/*
record="$tmp/patches"
: >"$record"
yaml="$tmp/pods.yaml"
stub_pid=""
ulimits="${KUBE_ULIMITS:-nofile=4096:4096 nproc=4096:4096}"
if [ "$ulimits" != none ]; then
    {
        echo "[containers]"
        printf 'default_ulimits = ['
        # shellcheck disable=SC2086
        printf '"%s", ' $ulimits | sed 's/, $//'
        echo ']'
    } >"$tmp/containers.conf"
    export CONTAINERS_CONF="$tmp/containers.conf"
fi

cleanup() {
    local rc=$?
    if [ -f "$yaml" ]; then
        if [ $rc -ne 0 ]; then
            for i in 0 1 2; do
                for c in electd worker; do
                    echo "---- podman logs binlog-$i-$c (last 20 lines)"
                    pm logs "binlog-$i-$c" 2>&1 | tail -n 20 || true
                done
            done
            echo "---- PATCHes received"
            cat "$record"
        fi
        pm play kube --down "$yaml" >/dev/null 2>&1 || true
        for i in 0 1 2; do pm volume rm -f "electd-data-binlog-$i" >/dev/null 2>&1 || true; done
    fi
    [ -n "$stub_pid" ] && kill "$stub_pid" 2>/dev/null
    finish $rc "$events" "$tool" "$tmp"
}
trap cleanup EXIT

python3 "$here/api_stub.py" "$stub_port" "$record" &
stub_pid=$!
for _ in $(seq 100); do
    ss -Hltn "sport = :$stub_port" | grep -q . && break
    sleep 0.05
done

python3 "$here/kube_pods.py" --k8s "$src/deploy/k8s" --image "$image" --worker-image "$image" \
    --base-port "$base" --api "http://127.0.0.1:$stub_port" --sa-dir "$tmp/sa" --token "$token" \
    --files-dir "$tmp" \
    --mount "$tmp/events:/events" --mount "$testworker:/usr/local/bin/testworker" \
    -- /usr/local/bin/testworker /events/events >"$yaml"
pm play kube "$yaml" >/dev/null

http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$(http_port "$1")$2" || true; }
# The pods whose electd answers /v1/primary with 200.
primaries() {
    local i out=""
    for i in 0 1 2; do
        [ "$(http_code "binlog-$i" /v1/primary)" = 200 ] && out="$out binlog-$i"
    done
    echo "${out# }"
}
# Polls (bounded) until PATCHes labelled pod $1 with role $2: prints the newest such line.
wait_patch() {
    local line deadline=$((SECONDS + 20))
    while [ $SECONDS -lt $deadline ]; do
        line=$(grep "/pods/$1\"" "$record" | tail -n 1 || true)
        if [ -n "$line" ] && [ "$(jq -r '.body | fromjson | .metadata.labels["electd-role"]' <<<"$line")" = "$2" ]; then
            echo "$line"
            return 0
        fi
        sleep 0.1
    done
    return 1
}
# Probes as the kubelet runs them: the template's paths on each member's port.
probes_pass() {
    local i path
    for i in "$@"; do
        for path in /healthz /readyz; do
            [ "$(http_code "binlog-$i" "$path")" = 200 ] || return 1
        done
    done
}

# ---- the pods come up: probes, one worker, the label -----------------------------------------
out=$("$tool" wait "$events" - 1 40000) || fail "no worker started within 40 s"
read -r first _ <<<"$out"
deadline=$((SECONDS + 30))
until probes_pass 0 1 2; do
    [ $SECONDS -lt $deadline ] || fail "the probes' paths did not all answer 200 within 30 s"
    sleep 0.2
done
for i in 0 1 2; do
    pm healthcheck run "binlog-$i-electd" >/dev/null || fail "podman healthcheck (liveness probe) of binlog-$i"
done
[ "$(primaries)" = "$first" ] || fail "primaries '$(primaries)', the worker runs in $first"
line=$(wait_patch "$first" primary) || fail "no PATCH labelled $first primary"
[ "$(jq -r .auth <<<"$line")" = "Bearer $token" ] || fail "the PATCH did not carry the service account's token"
[ "$(jq -r .content_type <<<"$line")" = "application/merge-patch+json" ] || fail "PATCH content type"
echo "ok: probes pass; $first runs the worker under the gate and was labelled primary"

# ---- pod deletion: preStop, then SIGTERM -----------------------------------------------------
prestop=$(python3 -c 'import sys, yaml, json
d = [x for x in yaml.safe_load_all(open(sys.argv[1]))
     if x["kind"] == "Pod" and x["metadata"]["name"] == sys.argv[2]][0]
c = [c for c in d["spec"]["containers"] if c["name"] == "electd"][0]
print(json.dumps(c["lifecycle"]["preStop"]["exec"]["command"]))' "$yaml" "$first")
readarray -t cmd < <(jq -r '.[]' <<<"$prestop")
starts=$("$tool" check "$events" | grep -c ' pid ')
pm exec "$first-electd" "${cmd[@]}" >"$tmp/prestop.log" 2>&1 || fail "preStop failed in $first"
# The preStop alone hands over (it ends with `|| true`: the successor is the proof).
out=$("$tool" wait "$events" "$first" $((starts + 1)) 10000) ||
    fail "no successor within 10 s of $first's preStop: $(cat "$tmp/prestop.log")"
pm pod stop -t 30 "$first" >/dev/null
read -r second _ <<<"$out"
read -r _ handover_ms how <<<"$("$tool" gap "$events")"
[ "$how" = stopped ] || fail "$first's worker was not stopped gracefully by the gate"
[ "$handover_ms" -lt "$HANDOVER_BOUND_MS" ] || fail "handover took $handover_ms ms"
wait_patch "$second" primary >/dev/null || fail "no PATCH labelled $second primary"
echo "ok: $first deleted (preStop + SIGTERM) -> $second primary after $handover_ms ms, labelled"

# ---- electd killed: the gate stops its worker on its own -------------------------------------
starts=$("$tool" check "$events" | grep -c ' pid ')
pm start "$first-electd" "$first-worker" >/dev/null 2>&1 || pm pod start "$first" >/dev/null
pm kill "$second-electd" >/dev/null
out=$("$tool" wait "$events" "$second" $((starts + 1)) 15000) ||
    fail "no successor within 15 s of killing $second's electd"
read -r third _ <<<"$out"
read -r _ gate_ms how <<<"$("$tool" gap "$events")"
echo "ok: $second's electd killed -> its gate stopped the worker ($how), $third primary $gate_ms ms later"

for i in 0 1 2; do pm pod stop -t 30 "binlog-$i" >/dev/null 2>&1 || true; done
"$tool" check "$events" | tail -n 1
"$tool" check "$events" >/dev/null || fail "primaries overlapped"
echo "kube play: handover ${handover_ms} ms (preStop + SIGTERM), gate after electd's kill ${gate_ms} ms"
