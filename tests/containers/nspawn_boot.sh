#!/bin/bash
# tests/containers/nspawn_boot.sh — the Debian package and deploy/systemd/electd@.service as a
# user gets them: a copy of the cached Debian 12 root (deploy/docker/debian-root.sh --systemd)
# with this build's .deb installed (cpack, as `make deb`), booted with `systemd-nspawn --boot`
# (the host's network: loopback is shared). Member a runs there as electd@a.service under the
# unit's hardening, supervising the test worker; members b and c run on the host from the
# build tree. Checks:
#   - the unit starts; under its hardening electd writes its data dir (electd.db, /healthz),
#     binds its ports and runs its on-change hook (hook lines in the shared directory);
#   - `systemctl reload electd@a` is handled: electd logs its reload line, keeps its pid and
#     its workload;
#   - with a primary, `systemctl stop electd@a` hands over: the worker stopped gracefully, a
#     successor within the handover bound, the unit inactive (not failed);
#   - the overlap checker clean.
# Usage: nspawn_boot.sh BUILD_DIR TESTWORKER EVENTS_TOOL
# Env:   ELECTD_ROOT_CACHE (as debian-root.sh), NSPAWN_TEST_PORT (default 27301: six ports).
# Exit 77 (skipped) without systemd-nspawn, root, the cached root or cpack.
set -euo pipefail

build=$1
testworker=$2
tool=$3
# shellcheck source=tests/containers/common.sh
. "$(dirname "$0")/common.sh"

command -v systemd-nspawn >/dev/null 2>&1 || skip "systemd-nspawn is missing (sh deploy/install-deps.sh --containers)"
command -v nsenter >/dev/null 2>&1 || skip "nsenter is missing"
if ! command -v cpack >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    skip "cpack or dpkg-deb missing"
fi
[ "$(id -u)" -eq 0 ] || skip "needs root (systemd-nspawn)"
cached="${ELECTD_ROOT_CACHE:-/var/cache/electd-test}/bookworm-systemd"
[ -f "$cached/.electd-root-complete" ] ||
    skip "no Debian 12 root at $cached (make it once: sh deploy/docker/debian-root.sh --systemd)"

E_MS=500
HANDOVER_BOUND_MS=1000
base="${NSPAWN_TEST_PORT:-27301}"
nodes=(a b c)
members "$base" "${nodes[@]}"

# The copy of the root is large: under /var/tmp, not a memory-backed /tmp.
tmp=$(mktemp -d /var/tmp/electd-nspawn.XXXXXX)
chmod 0755 "$tmp"
mkdir -m 0777 "$tmp/events"
events="$tmp/events/events"
install -m 0666 /dev/null "$events"
install -m 0666 /dev/null "$tmp/events/hooks"
root="$tmp/root"
nspawn_pid=""
init_pid=""
declare -A host_pid

inside() { nsenter -t "$init_pid" -m -u -i -n -p -- "$@"; }

cleanup() {
    local rc=$?
    if [ -n "$init_pid" ]; then
        if [ $rc -ne 0 ]; then
            echo "---- journal of electd@a (last 40 lines)"
            inside journalctl -u electd@a --no-pager -n 40 2>&1 || true
        fi
        inside systemctl poweroff >/dev/null 2>&1 || true
    fi
    if [ -n "$nspawn_pid" ]; then
        for _ in $(seq 150); do
            kill -0 "$nspawn_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$nspawn_pid" 2>/dev/null || true
    fi
    for n in b c; do
        [ -n "${host_pid[$n]:-}" ] && kill -9 "${host_pid[$n]}" 2>/dev/null
    done
    finish $rc "$events" "$tool" "$tmp"
}
trap cleanup EXIT

# ---- the root: a copy of the cached one, the package installed -----------------------------
echo "copying $cached"
cp -a "$cached" "$root"
(cd "$tmp" && cpack -G DEB -B "$tmp/pkg" --config "$build/CPackConfig.cmake" >"$tmp/cpack.log" 2>&1) ||
    {
        cat "$tmp/cpack.log"
        fail "cpack -G DEB"
    }
deb=$(ls "$tmp"/pkg/electd_*.deb)
cp "$deb" "$root/tmp/electd.deb"
chroot "$root" dpkg -i /tmp/electd.deb >"$tmp/dpkg.log" 2>&1 || {
    cat "$tmp/dpkg.log"
    fail "dpkg -i $(basename "$deb") in the Debian 12 root"
}
install -m 0755 "$testworker" "$root/usr/local/bin/testworker"
mkdir -p "$root/etc/electd"
cat >"$root/etc/electd/a.json" <<EOF
{
  "name": "a",
  "peers": "$peers",
  "listen-peer": "127.0.0.1:${peer_port[a]}",
  "listen-http": "127.0.0.1:${http_port[a]}",
  "heartbeat-interval": "50ms",
  "election-timeout": "${E_MS}ms",
  "stop-timeout": "200ms",
  "exec": ["/usr/local/bin/testworker", "/var/lib/electd/a/events/events"],
  "on-change": "/usr/local/bin/testworker --stamp /var/lib/electd/a/events/hooks change"
}
EOF
echo 'electd-nspawn' >"$root/etc/hostname"

# ---- boot ------------------------------------------------------------------------------------
# --register=no --keep-unit: this host's init is not systemd (no machined, no system bus);
# the shared event directory is bound inside a's state directory, the one place its
# hardening (ProtectSystem=strict) lets it write.
systemd-nspawn -q -D "$root" --boot --register=no --keep-unit --machine=electd-nspawn \
    --bind="$tmp/events:/var/lib/electd/a/events" >"$tmp/console.log" 2>&1 </dev/null &
nspawn_pid=$!
# The container's init: the child of systemd-nspawn that runs systemd (a short-lived helper
# child comes first).
for _ in $(seq 200); do
    init_pid=""
    for pid in $(ps -o pid= --ppid "$nspawn_pid"); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ] && init_pid=$pid
    done
    [ -n "$init_pid" ] && break
    sleep 0.1
done
[ -n "$init_pid" ] || fail "systemd-nspawn started no init: $(cat "$tmp/console.log")"
state=""
for _ in $(seq 600); do
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    case $state in running | degraded) break ;; esac
    sleep 0.1
done
case $state in running | degraded) ;; *) fail "the container did not finish booting ($state)" ;; esac
echo "ok: Debian 12 booted under systemd-nspawn ($state)"

# ---- the group: a under systemd, b and c on the host ----------------------------------------
for n in b c; do
    "$build/sidecar/electd" --name "$n" --peers "$peers" --data-dir "$tmp/data-$n" \
        --listen-peer "127.0.0.1:${peer_port[$n]}" --listen-http "127.0.0.1:${http_port[$n]}" \
        --heartbeat-interval 50ms --election-timeout "${E_MS}ms" --stop-timeout 200ms \
        --exec -- "$testworker" "$events" >"$tmp/$n.log" 2>&1 &
    host_pid[$n]=$!
done
inside systemctl start electd@a.service || fail "systemctl start electd@a"

http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:${http_port[$1]}$2" || true; }
wait_code() { # member path code: bounded poll
    local i
    for i in $(seq 300); do
        [ "$(http_code "$1" "$2")" = "$3" ] && return 0
        sleep 0.1
    done
    return 1
}
wait_code a /readyz 200 || fail "electd@a not ready within 30 s (ports bound, leader known)"
wait_code a /healthz 200 || fail "electd@a: /healthz (store writable) is not 200"
inside test -s /var/lib/electd/a/electd.db || fail "no /var/lib/electd/a/electd.db"
owner=$(inside stat -c %U /var/lib/electd/a/electd.db)
[ "$owner" = electd ] || fail "electd.db belongs to $owner"
"$tool" wait "$events" - 1 20000 >/dev/null || fail "no workload started"
for _ in $(seq 100); do
    grep -q ' a change' "$tmp/events/hooks" && break
    sleep 0.1
done
grep -q ' a change' "$tmp/events/hooks" || fail "a's on-change hook left no line"
echo "ok: electd@a under its hardening: data dir written, ports bound, on-change hook ran"

# Leadership to a, so that stopping the unit is a handover.
"$build/sidecar/electd" transfer --http "127.0.0.1:${http_port[a]}" --to a >/dev/null 2>&1 || true
for _ in $(seq 100); do
    [ "$(http_code a /v1/primary)" = 200 ] && break
    [ "$(http_code b /v1/primary)" = 200 ] && "$build/sidecar/electd" transfer --http "127.0.0.1:${http_port[b]}" --to a >/dev/null 2>&1
    [ "$(http_code c /v1/primary)" = 200 ] && "$build/sidecar/electd" transfer --http "127.0.0.1:${http_port[c]}" --to a >/dev/null 2>&1
    sleep 0.2
done
out=$("$tool" wait "$events" - 1 10000) || fail "no workload runs"
read -r running _ <<<"$out"
[ "$running" = a ] || fail "the workload runs on $running, not a, after the transfer"

# ---- reload ----------------------------------------------------------------------------------
pid_before=$(inside systemctl show -p MainPID --value electd@a)
inside systemctl reload electd@a || fail "systemctl reload electd@a"
for _ in $(seq 50); do
    inside journalctl -u electd@a --no-pager -o cat | grep -q 'reload' && break
    sleep 0.1
done
inside journalctl -u electd@a --no-pager -o cat | grep -q 'reload' || fail "no reload line in the journal"
pid_after=$(inside systemctl show -p MainPID --value electd@a)
[ "$pid_before" = "$pid_after" ] || fail "reload restarted electd ($pid_before -> $pid_after)"
out=$("$tool" wait "$events" - 1 2000) || fail "no workload after the reload"
read -r still _ <<<"$out"
[ "$still" = a ] || fail "the workload moved to $still on reload"
echo "ok: systemctl reload handled ($(inside journalctl -u electd@a --no-pager -o cat | grep reload | tail -n 1))"

# ---- stop hands over -------------------------------------------------------------------------
starts=$("$tool" check "$events" | grep -c ' pid ')
inside systemctl stop electd@a || fail "systemctl stop electd@a"
out=$("$tool" wait "$events" a $((starts + 1)) 5000) || fail "no successor after systemctl stop"
read -r next _ <<<"$out"
read -r _ handover_ms how <<<"$("$tool" gap "$events")"
[ "$how" = stopped ] || fail "a's workload was not stopped gracefully"
[ "$handover_ms" -lt "$HANDOVER_BOUND_MS" ] || fail "handover took $handover_ms ms"
result=$(inside systemctl show -p Result --value electd@a)
[ "$result" = success ] || fail "electd@a stopped with result $result"
echo "ok: systemctl stop electd@a -> $next primary after $handover_ms ms (unit result: $result)"

for n in b c; do kill -TERM "${host_pid[$n]}"; done
for n in b c; do wait "${host_pid[$n]}" || true; done
host_pid=()
"$tool" check "$events" | tail -n 1
"$tool" check "$events" >/dev/null || fail "primaries overlapped"
echo "nspawn: handover ${handover_ms} ms (systemctl stop)"
