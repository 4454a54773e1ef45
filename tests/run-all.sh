#!/usr/bin/env bash
# run-all.sh - the whole test suite: every Check suite on a release build (including the full
# conformance suite on the cpu backend), a smoke run of the mutation harness, then again under
# AddressSanitizer + UBSan (conformance reduced to its --quick subset there, see
# docs/conformance.md), then the reference-only build, then a bounded run of the fuzz harnesses.
# Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/bootstrap.sh build
meson test -C build --print-errorlogs --num-processes 1
# Mutation testing (docs/mutation.md): every mutant must still apply to this tree, and two of
# them are built and must be caught (the whole table takes about 16 minutes; run it by hand).
for m in tests/mutants/*.patch; do
    git apply --check "$m" || { echo "mutant $m no longer applies" >&2; exit 1; }
done
bash tests/mutants/run.sh cpu_rescale_missing cpu_bf16_store_rtz

bash tools/bootstrap.sh build-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
    -Db_lundef=false
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
ATTN_TEST_QUICK=1 meson test -C build-asan --print-errorlogs --num-processes 1
# The reference-only build (no BLIS, no OpenCL): what a reader without either can build.
bash tools/bootstrap.sh build-ref -Dcpu=disabled -Dopencl=disabled
meson test -C build-ref --print-errorlogs --num-processes 1
# The libFuzzer harnesses (clang, reference-only): every committed regression and seed input
# once, then 45 s of fuzzing per target on a copy of its seed corpus (docs/fuzzing.md).
bash tests/fuzz/run.sh 45
echo "all test suites passed (release, ASan+UBSan and reference-only builds, fuzzing)"
