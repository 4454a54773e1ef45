#!/usr/bin/env bash
# bootstrap.sh - install what attn needs on Debian 12 (only what is missing), then configure and
# build. Idempotent. Usage: tools/bootstrap.sh [BUILDDIR [meson options...]]
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(gcc pkg-config meson ninja-build check libblis-openmp-dev ocl-icd-opencl-dev
      opencl-headers pocl-opencl-icd oclgrind libcjson-dev libxxhash-dev
      liblapacke-dev libigraph-dev)
# A fuzzing build (-Dfuzz=true, tests/fuzz/) needs clang and its runtime libraries (libFuzzer,
# the sanitizers), which Debian 12's clang only recommends.
for opt in "${@:2}"; do
    [ "$opt" = -Dfuzz=true ] && pkgs+=(clang libclang-rt-dev)
done
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "bootstrap: installing ${missing[*]}" >&2
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

builddir=${1:-build}
[ $# -gt 0 ] && shift
if [ -f "$builddir/build.ninja" ]; then
    [ $# -gt 0 ] && meson configure "$builddir" "$@"
else
    meson setup "$builddir" "$@"
fi
ninja -C "$builddir"
