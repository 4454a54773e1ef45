#!/usr/bin/env bash
# run.sh - the OpenCL kernels at GPU work-group sizes under Oclgrind (Debian's OpenCL 1.2
# device simulator, loaded as an ICD): half the quick conformance list with every row of the
# per-device tuning table (src/opencl/ocl_tune.c) in device memory (and host memory on the GPU
# row), and one backward case per op on the GPU row, with Oclgrind's
# out-of-bounds, data-race and API checks. Any Oclgrind report or failed case fails the run.
# Usage: tests/oclgrind/run.sh ATTN_BINARY [extra attn conform options...]
# Exit: 0 all clean, 1 a failure, 77 (skip) when Oclgrind or the binary's OpenCL is missing.
set -uo pipefail
attn=${1:?usage: run.sh ATTN_BINARY [options]}
shift
icd=/usr/lib/oclgrind/liboclgrind-rt-icd.so
if [ ! -e "$icd" ]; then
    echo "oclgrind: SKIPPED: $icd not found (apt-get install oclgrind)"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/vendors" "$work/cache"
echo "$icd" > "$work/vendors/oclgrind.icd"
# Only the simulator is visible; its checks on (uninitialised-value tracking is off: it does
# not know LLVM 15's freeze instruction).
export OCL_ICD_VENDORS="$work/vendors" OCLGRIND_CHECK_API=1 OCLGRIND_DATA_RACES=1
if ! "$attn" devices >/dev/null 2>&1; then
    echo "oclgrind: SKIPPED: $attn sees no Oclgrind device (a build without OpenCL?)"
    exit 77
fi
# Rows of the tuning table: label and backend options (br, bc, vw, wg, local).
rows=("pocl-cpu br=16,bc=16,vw=16,wg=1,local=0"
      "gpu br=2,bc=16,vw=8,wg=64,local=1"
      "intel-gpu br=2,bc=8,vw=8,wg=32,local=1"
      "any br=4,bc=8,vw=8,wg=16,local=1")
# Each row runs half of the quick list's forward cases (alternating), so the rows together cover
# all of them; the backward kernels (several launches per case, each op's suite also runs under
# Oclgrind by hand: docs/opencl.md) with one quick backward case of each op (the one with the
# most options: the longest name), on the GPU row in device memory.
# kvcache has no kernel of its own (it runs the rope and sdpa kernels, checked by their cases)
"$attn" conform --list --quick 2>/dev/null | grep -v ' backward' | grep -v '^kvcache ' \
    > "$work/quick.cases"
"$attn" conform --list --quick 2>/dev/null | grep ' backward' |
    awk '{ if (length($0) > len[$1]) { len[$1] = length($0); best[$1] = $0 } }
         END { for (k in best) print best[k] }' > "$work/backward.cases"
fail=0
n=0
for row in "${rows[@]}"; do
    awk -v k=$((n % 2)) 'NR % 2 == k' "$work/quick.cases" > "$work/row.cases"
    n=$((n + 1))
    label=${row%% *}
    opts="cache=$work/cache,${row#* }"
    mems=device
    [ "$label" = gpu ] && mems="device host" # the host-memory path: upload, compact, scatter
    for mem in $mems; do
        cases="$work/row.cases"
        if [ "$label" = gpu ] && [ "$mem" = device ]; then
            cat "$work/row.cases" "$work/backward.cases" > "$work/rowb.cases"
            cases="$work/rowb.cases"
        fi
        start=$SECONDS
        "$attn" conform --backend opencl --device 0:0 --options "$opts" --memory "$mem" \
            --cases "$cases" "$@" > "$work/out" 2> "$work/err"
        rc=$?
        summary=$(tail -n 1 "$work/out")
        reports=$(grep -c . "$work/err")
        printf 'oclgrind: %-10s %-6s %-40s %3d s  %s, %d simulator reports\n' "$label" "$mem" \
            "$opts" $((SECONDS - start)) "$summary" "$reports"
        if [ $rc -ne 0 ] || [ "$reports" -ne 0 ]; then
            fail=1
            grep -E '^(FAILED|MISTRUSTED)' "$work/out" | head -5
            head -40 "$work/err"
        fi
    done
done
if [ $fail -ne 0 ]; then
    echo "oclgrind: FAILED"
    exit 1
fi
echo "oclgrind: every tuning row clean"
