#!/bin/bash
# tests/containers/container_failover.sh — the image of deploy/docker/Dockerfile under podman:
# three electd containers (host networking, 127.0.0.1 only, a named volume each), each
# supervising the test worker, which logs its start/alive/stop lines to one shared event file
# (CLOCK_MONOTONIC is the host's in every container). Checks:
#   - one leader, exactly one primary (/v1/primary answers 200 on one member only);
#   - `podman kill` (SIGKILL) of the primary's container: a successor within the failover
#     bound, no overlap;
#   - `podman stop` (SIGTERM) of the primary's container: its worker stopped gracefully, the
#     successor within the handover bound;
#   - a value written before, read after all three containers were removed and created again
#     from their volumes (no other copy of it exists: the volumes kept the data);
#   - the overlap checker (events_tool check, over tests/integration/events.c) clean at the end.
# Prints the failover and handover times as the workloads saw them.
#
# Usage: container_failover.sh SOURCE_DIR TESTWORKER EVENTS_TOOL
# Env:   ELECTD_IMAGE           the image (default electd:<project version>, from `make image`)
#        PODMAN_FLAGS           global podman options, e.g. "--runtime runc --cgroup-manager
#                               cgroupfs" (docs/getting-started.md: constrained hosts)
#        CONTAINER_RUN_FLAGS    options of `podman run` (default: explicit nofile/nproc limits,
#                               which hosts whose default limits cannot be set need)
#        CONTAINER_TEST_PORT    first of the six ports used (default 27101)
# Exit 77 (CTest: skipped) when podman, root or the image is missing.
set -euo pipefail

src=$1
testworker=$2
tool=$3
# shellcheck source=tests/containers/common.sh
. "$(dirname "$0")/common.sh"

command -v podman >/dev/null 2>&1 || skip "podman is not installed (sh deploy/install-deps.sh --containers)"
[ "$(id -u)" -eq 0 ] || skip "needs root (the image is in rootful podman's storage)"
version=$(sed -n 's/^project(electd VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
image="${ELECTD_IMAGE:-electd:$version}"
# shellcheck disable=SC2086
pm() { podman ${PODMAN_FLAGS:-} "$@"; }
# shellcheck disable=SC2086
timeout 30 podman ${PODMAN_FLAGS:-} image exists "$image" || skip "no image $image (make image)"
read -r -a run_flags <<<"${CONTAINER_RUN_FLAGS:---ulimit nofile=4096:4096 --ulimit nproc=4096:4096}"

E_MS=500              # --election-timeout
FAILOVER_BOUND_MS=3000 # kill: an election timeout (randomised up to twice) + the vote + start
HANDOVER_BOUND_MS=1000 # stop: the worker's stop + TimeoutNow + start (as tests/integration)
base="${CONTAINER_TEST_PORT:-27101}"
nodes=(a b c)
members "$base" "${nodes[@]}"

tmp=$(mktemp -d /tmp/electd-containers.XXXXXX)
chmod 0777 "$tmp" # the containers run as uid 10001
events="$tmp/events"
install -m 0666 /dev/null "$events"
tag="electd-ct-$$"

cleanup() {
    local rc=$?
    for n in "${nodes[@]}"; do
        if [ $rc -ne 0 ] && pm container exists "$tag-$n"; then
            echo "---- podman logs $tag-$n (last 30 lines)"
            pm logs "$tag-$n" 2>&1 | tail -n 30
        fi
        pm rm -f -t 0 "$tag-$n" >/dev/null 2>&1 || true
        pm volume rm -f "$tag-$n" >/dev/null 2>&1 || true
    done
    finish $rc "$events" "$tool" "$tmp"
}
trap cleanup EXIT


# One member: its own named volume on the image's data dir, the test worker mounted read-only.
run_node() {
    local n=$1
    pm run -d --name "$tag-$n" --network host "${run_flags[@]}" \
        -e "ELECTD_HEALTH_PORT=${http_port[$n]}" -e "ELECTD_HTTP=127.0.0.1:${http_port[$n]}" \
        -v "$tag-$n:/var/lib/electd" -v "$tmp:/events" \
        -v "$testworker:/usr/local/bin/testworker:ro" \
        "$image" --name "$n" --peers "$peers" \
        --listen-peer "127.0.0.1:${peer_port[$n]}" --listen-http "127.0.0.1:${http_port[$n]}" \
        --heartbeat-interval 50ms --election-timeout "${E_MS}ms" --stop-timeout 200ms \
        --exec -- /usr/local/bin/testworker /events/events >/dev/null
}

http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:${http_port[$1]}$2" || true; }

# The members whose /v1/primary answers 200 (bounded: each request at most 2 s).
primaries() {
    local n out=""
    for n in "$@"; do
        [ "$(http_code "$n" /v1/primary)" = 200 ] && out="$out $n"
    done
    echo "${out# }"
}

# Polls (bounded) until every member named has /readyz 200: it knows a leader.
wait_ready() {
    local n deadline=$((SECONDS + 30))
    for n in "$@"; do
        until [ "$(http_code "$n" /readyz)" = 200 ]; do
            [ $SECONDS -lt $deadline ] || fail "$n not ready within 30 s"
            sleep 0.1
        done
    done
}

pm volume create "$tag-a" >/dev/null
pm volume create "$tag-b" >/dev/null
pm volume create "$tag-c" >/dev/null
for n in "${nodes[@]}"; do run_node "$n"; done

# ---- one leader, exactly one primary ---------------------------------------------------------
out=$("$tool" wait "$events" - 1 30000) || fail "no workload started within 30 s"
read -r first _ <<<"$out"
wait_ready a b c
p=$(primaries a b c)
[ "$p" = "$first" ] || fail "primaries by /v1/primary: '$p'; the running worker is on $first"
leader=$(curl -s -m 2 "http://127.0.0.1:${http_port[a]}/v1/leader" | jq -r '.name // empty')
[ "$leader" = "$first" ] || fail "a says the leader is '$leader', the worker runs on $first"
for n in "${nodes[@]}"; do
    # The image's HEALTHCHECK (curl /healthz in runtime, `electd status` in minimal) on the
    # member's own port: the runtime check reads ELECTD_HEALTH_PORT, the minimal ELECTD_HTTP.
    pm healthcheck run "$tag-$n" >/dev/null 2>&1 || fail "podman healthcheck run $tag-$n failed"
done
echo "ok: $first leads and is the only primary; the image's health check passes"

# A value only the volumes keep, for the re-create step.
code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -X PUT --data-binary "kept-$$" \
    "http://127.0.0.1:${http_port[$first]}/v1/kv/containers-test")
[ "$code" = 200 ] || [ "$code" = 201 ] || fail "PUT on the leader answered $code"

# ---- podman kill: failover -------------------------------------------------------------------
pm kill "$tag-$first" >/dev/null
out=$("$tool" wait "$events" "$first" 2 10000) ||
    fail "no successor within 10 s of podman kill $first"
read -r second _ <<<"$out"
read -r _ failover_ms how <<<"$("$tool" gap "$events")"
# No check of how the old worker ended: the kernel kills the rest of the container when its
# PID 1 (electd) dies, but the shim may see electd gone first and stop the worker, which then
# logs a stop line. Either way it ended before the successor started (the overlap check).
[ "$failover_ms" -lt "$FAILOVER_BOUND_MS" ] ||
    fail "failover took $failover_ms ms (bound $FAILOVER_BOUND_MS ms)"
echo "ok: podman kill $first -> $second primary after $failover_ms ms (old worker $how)"
pm start "$tag-$first" >/dev/null
wait_ready "$first"

# ---- podman stop: graceful handover ----------------------------------------------------------
starts=$("$tool" check "$events" | grep -c ' pid ')
pm stop -t 10 "$tag-$second" >/dev/null
out=$("$tool" wait "$events" "$second" $((starts + 1)) 5000) ||
    fail "no successor within 5 s of podman stop $second"
read -r third _ <<<"$out"
read -r _ handover_ms how <<<"$("$tool" gap "$events")"
[ "$how" = stopped ] || fail "the stopped primary's worker was not stopped gracefully"
[ "$handover_ms" -lt "$HANDOVER_BOUND_MS" ] ||
    fail "handover took $handover_ms ms (bound $HANDOVER_BOUND_MS ms)"
state=$(pm inspect --format '{{.State.ExitCode}}' "$tag-$second")
[ "$state" = 0 ] || fail "electd in $tag-$second exited with $state on SIGTERM"
echo "ok: podman stop $second -> $third primary after $handover_ms ms (electd exited 0)"

# ---- the volumes outlive their containers ----------------------------------------------------
for n in "${nodes[@]}"; do pm stop -t 10 "$tag-$n" >/dev/null; done
for n in "${nodes[@]}"; do pm rm "$tag-$n" >/dev/null; done
for n in "${nodes[@]}"; do run_node "$n"; done
wait_ready a b c
value=$(curl -s -m 5 "http://127.0.0.1:${http_port[a]}/v1/kv/containers-test?stale" || true)
case "$value" in
*"kept-$$"* | "kept-$$") ;;
*) fail "after re-creating the containers the value is '$value'" ;;
esac
p=$(primaries a b c)
if [ -z "$p" ] || [ "$(wc -w <<<"$p")" -ne 1 ]; then fail "primaries after re-create: '$p'"; fi
echo "ok: re-created containers kept their data; $p is the only primary"

# ---- overlap over the whole run --------------------------------------------------------------
for n in "${nodes[@]}"; do pm stop -t 10 "$tag-$n" >/dev/null; done
"$tool" check "$events" | tail -n 1
"$tool" check "$events" >/dev/null || fail "primaries overlapped"
echo "container failover: ${failover_ms} ms (podman kill), handover: ${handover_ms} ms (podman stop)"
