# shellcheck shell=bash
# tests/containers/common.sh — sourced by the shell tests of tests/containers/: their exits
# (skip: 77, CTest's SKIP_RETURN_CODE; fail), the members' loopback ports, and the end of
# a run (the intervals of the event file shown on failure, the temporary directory removed).

SKIP=77
skip() {
    echo "SKIPPED: $*"
    exit $SKIP
}
fail() {
    echo "FAIL: $*"
    exit 1
}

# members BASE NAME...: peer port BASE+i and HTTP port BASE+N+i for the i-th of N members
# (peer_port[NAME], http_port[NAME]), their --peers list in $peers; fails when any is in use.
declare -A peer_port http_port
members() {
    local base=$1 i=0 n p
    shift
    peers=""
    for n in "$@"; do
        peer_port[$n]=$((base + i))
        http_port[$n]=$((base + $# + i))
        peers="${peers:+$peers,}$n=127.0.0.1:${peer_port[$n]}"
        i=$((i + 1))
    done
    for p in "${peer_port[@]}" "${http_port[@]}"; do
        if ss -Hltn "sport = :$p" | grep -q .; then
            fail "port $p is in use (set the test's port variable)"
        fi
    done
}

# finish RC EVENTS TOOL TMP: the last intervals of EVENTS when RC is a failure, TMP removed,
# exit RC. The end of every test's EXIT trap.
finish() {
    [ "$1" -ne 0 ] && [ -s "$2" ] && "$3" check "$2" | tail -n 12
    rm -rf "$4"
    exit "$1"
}
