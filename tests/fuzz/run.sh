#!/bin/sh
# run.sh BUILD_DIR [SECONDS] — runs every libFuzzer target built in BUILD_DIR (a build
# configured with -DCMAKE_C_COMPILER=clang -DELECTD_FUZZ=ON; `make fuzz` does all this) for
# SECONDS each (default 30), one after the other. Each target keeps its corpus in
# BUILD_DIR/fuzz-corpus/<target>/ (started from the target's seeds and from
# tests/fuzz/corpus/<target>/), crash inputs in BUILD_DIR/fuzz-artifacts/<target>/, and its
# log in BUILD_DIR/fuzz-logs/<target>.log. Prints one line per target; exits non-zero if
# any target crashed (or found a leak, timeout or out-of-memory input).
set -u

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 BUILD_DIR [SECONDS]" >&2
    exit 2
fi
build=$1
secs=${2:-30}
case $secs in
'' | *[!0-9]*)
    echo "run.sh: SECONDS must be a whole number, got '$secs'" >&2
    exit 2
    ;;
esac
src_dir=$(cd "$(dirname "$0")" && pwd)
bin_dir=$build/tests/fuzz

targets=""
for t in "$bin_dir"/fuzz_*; do
    case $t in
    *_replay) continue ;;
    esac
    [ -f "$t" ] && [ -x "$t" ] && targets="$targets $t"
done
if [ -z "$targets" ]; then
    echo "run.sh: no libFuzzer targets in $bin_dir (configure with -DELECTD_FUZZ=ON)" >&2
    exit 2
fi

mkdir -p "$build/fuzz-logs"
failed=0
for t in $targets; do
    name=$(basename "$t")
    corpus=$build/fuzz-corpus/$name
    artifacts=$build/fuzz-artifacts/$name
    log=$build/fuzz-logs/$name.log
    mkdir -p "$corpus" "$artifacts"
    if [ -x "${t}_replay" ]; then
        "${t}_replay" --write-seeds "$corpus" >/dev/null || true
    fi
    set -- "$corpus"
    if [ -d "$src_dir/corpus/$name" ]; then
        set -- "$@" "$src_dir/corpus/$name"
    fi

    "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$@" >"$log" 2>&1
    rc=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
    files=$(find "$corpus" -type f | wc -l | tr -d ' ')
    if [ "$rc" -eq 0 ]; then
        echo "$name: ok, ${runs:-?} runs in ${secs}s, coverage ${cov:-?}, corpus $files files"
    else
        failed=1
        found=$(ls "$artifacts" 2>/dev/null | head -n 1)
        echo "$name: FAILED (exit $rc) after ${runs:-?} runs; input: $artifacts/${found:-?}; log: $log"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_|.*runtime error)' "$log" | head -n 5 | sed 's/^/    /'
        echo "    replay: $t $artifacts/${found:-CRASH_FILE}"
    fi
done
exit $failed
