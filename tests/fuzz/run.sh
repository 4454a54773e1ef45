#!/usr/bin/env bash
# run.sh - the libFuzzer harnesses (docs/fuzzing.md): build them (clang, reference-only, in
# $ATTN_FUZZ_BUILD, default build-fuzz; installs what is missing), run every committed regression
# and seed input once, then fuzz each target for SECONDS (default 60) on a copy of its seed corpus
# in a temporary folder (the committed corpus never grows here). Prints executions, exec/s,
# coverage and corpus size per target; fails when a harness crashes, leaks or times out, and
# keeps the input that did it under a printed path. The random seed is fixed (ATTN_FUZZ_SEED,
# default 1) so that a run can be replayed; ATTN_FUZZ_SEED=0 lets libFuzzer pick one.
# Usage: tests/fuzz/run.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
build=${ATTN_FUZZ_BUILD:-build-fuzz}
fuzz=tests/fuzz
seed=${ATTN_FUZZ_SEED:-1}

CC=clang bash tools/bootstrap.sh "$build" -Dfuzz=true -Dopencl=disabled -Dcpu=disabled \
    -Dtests=false -Dbuildtype=debugoptimized
meson test -C "$build" --suite fuzz --print-errorlogs --num-processes 1

# Longest input per target: room for a few header lines / case lines / one decoded call.
max_len() {
    case $1 in
    npy) echo 4096 ;;
    cases) echo 2048 ;;
    sdpa_validate) echo 512 ;;
    safetensors) echo 4096 ;;
    *) echo 4096 ;;
    esac
}

# "name value" of libFuzzer's final line (DONE, or the last status line before a crash).
stat_of() {
    local line
    line=$(grep -E '^#[0-9]+' "$2" | tail -n 1)
    sed -nE "s/.*[[:space:]]$1:[[:space:]]*([^[:space:]]+).*/\1/p" <<<"$line"
}

work=$(mktemp -d /tmp/attn-fuzz.XXXXXX)
failed=()
printf '%-14s %10s %8s %7s %7s %7s  %s\n' target execs exec/s cov ft corpus status
for src in "$fuzz"/fuzz_*.c; do
    t=$(basename "$src" .c)
    t=${t#fuzz_}
    mkdir -p "$work/$t/corpus" "$work/$t/crash"
    [ -d "$fuzz/corpus/$t" ] && cp "$fuzz/corpus/$t/"* "$work/$t/corpus/"
    opts=(-max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 -print_final_stats=1
          -seed="$seed" -artifact_prefix="$work/$t/crash/")
    [ -f "$fuzz/$t.dict" ] && opts+=(-dict="$fuzz/$t.dict")
    rc=0
    UBSAN_OPTIONS=print_stacktrace=1 "$build/$fuzz/fuzz_$t" "${opts[@]}" "$work/$t/corpus" \
        >"$work/$t/log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t/log")
    corpus=$(find "$work/$t/corpus" -type f | wc -l)
    printf '%-14s %10s %8s %7s %7s %7s  %s\n' "$t" "${execs:-?}" "${rate:-?}" \
        "$(stat_of cov "$work/$t/log")" "$(stat_of ft "$work/$t/log")" "$corpus" \
        "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)")"
    if [ $rc -ne 0 ]; then
        failed+=("$t")
        grep -E 'ERROR:|SUMMARY:|check failed|runtime error|Test unit written' "$work/$t/log" |
            sed 's/^/    /' | head -n 12
        echo "    log: $work/$t/log; input: $(ls "$work/$t/crash/"* 2>/dev/null | head -n 1)"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (inputs and logs kept in $work; add each input to" \
         "$fuzz/regressions/<target>/ once fixed)"
    exit 1
fi
rm -rf "$work"
echo "fuzz: every regression input passed and every target ran ${secs} s without a crash," \
     "leak or timeout"
