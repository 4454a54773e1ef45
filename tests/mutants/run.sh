#!/usr/bin/env bash
# run.sh - mutation testing of the conformance suite. Each tests/mutants/*.patch is a small,
# realistic kernel bug; this script applies it to a scratch worktree of this repository (the
# same tree state, uncommitted changes included), rebuilds the attn tool there incrementally,
# runs `attn conform` on the mutant's backend (quick list, then the full list if the quick one
# passed; opencl in device and host memory) and reports which list caught it, the deciding gate
# and the first failing case. docs/mutation.md describes it.
#
# Usage: bash tests/mutants/run.sh [--only NAME,NAME] [NAME...] [--scratch DIR] [--table FILE]
#                                  [--list] [-h]
# Exit status: 0 every non-equivalent mutant caught; 1 one survived the full list; 2 the
# harness could not run (usage, a patch that does not apply, a build failure, the unmutated tree
# failing its quick list, a mutant marked equivalent that some list catches).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel) || exit 2
mutdir=$repo/tests/mutants
timeout_quick=${ATTN_MUTANTS_TIMEOUT_QUICK:-300} # seconds per conform run (cold kernel builds)
timeout_full=${ATTN_MUTANTS_TIMEOUT_FULL:-900}
timeout_case=${ATTN_MUTANTS_TIMEOUT_CASE:-120} # per case, with --isolate --timeout
scratch=${ATTN_MUTANTS_SCRATCH:-${TMPDIR:-/tmp}/attn-mutants-$(id -u)-$(printf '%s' "$repo" | cksum | cut -d' ' -f1)}
table_out=""
selected=()
list_only=0

usage() { sed -n '9,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "run.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
    --only) [ $# -ge 2 ] || die "--only needs NAME[,NAME...]"; IFS=, read -ra more <<<"$2"
            selected+=("${more[@]}"); shift 2 ;;
    --only=*) IFS=, read -ra more <<<"${1#--only=}"; selected+=("${more[@]}"); shift ;;
    --scratch) [ $# -ge 2 ] || die "--scratch needs DIR"; scratch=$2; shift 2 ;;
    --table) [ $# -ge 2 ] || die "--table needs FILE"; table_out=$2; shift 2 ;;
    --list) list_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) selected+=("${1%.patch}"); shift ;;
    esac
done

# ---- the mutants and their headers ----
names=()
if [ ${#selected[@]} -gt 0 ]; then
    for n in "${selected[@]}"; do
        n=$(basename "${n%.patch}")
        [ -f "$mutdir/$n.patch" ] || die "no mutant $n (tests/mutants/$n.patch)"
        names+=("$n")
    done
else
    for f in "$mutdir"/*.patch; do
        [ -e "$f" ] && names+=("$(basename "${f%.patch}")")
    done
fi
[ ${#names[@]} -gt 0 ] || die "no mutants in $mutdir"

header() { # header FILE KEY: the value of '# KEY: value' above the diff
    sed -n '/^diff --git /q; s/^# '"$2"': *//p' "$1" | head -1
}
declare -A backend what equiv
for n in "${names[@]}"; do
    f=$mutdir/$n.patch
    backend[$n]=$(header "$f" backend)
    what[$n]=$(header "$f" what)
    equiv[$n]=$(header "$f" equivalent)
    case ${backend[$n]} in cpu|opencl|ref) ;; *) die "$n: '# backend:' must be cpu, opencl or ref" ;; esac
    [ -n "${what[$n]}" ] || die "$n: no '# what:' line"
done
if [ $list_only = 1 ]; then
    for n in "${names[@]}"; do
        printf '%-32s %-7s %s%s\n' "$n" "${backend[$n]}" "${what[$n]}" \
            "${equiv[$n]:+ [equivalent]}"
    done
    exit 0
fi

# ---- the scratch worktree: this tree's state, committed there as the base ----
mkdir -p "$(dirname "$scratch")"
exec 9>"$scratch.lock"
flock -n 9 || die "another run uses $scratch"
git -C "$repo" worktree prune
# A worktree whose repository is gone (a clone deleted and made again at the same path): its
# .git file names a gitdir that no longer exists. Only then is the folder removed.
stale_worktree() {
    [ -f "$1/.git" ] && [ ! -d "$(sed -n 's/^gitdir: //p' "$1/.git")" ]
}
if [ "$(git -C "$scratch" rev-parse --show-toplevel 2>/dev/null)" != "$scratch" ]; then
    if [ -e "$scratch" ] && stale_worktree "$scratch"; then
        echo "run.sh: removing $scratch, a scratch worktree of a repository that is gone" >&2
        rm -rf "$scratch"
    fi
    [ -e "$scratch" ] && die "$scratch exists and is not a worktree of this repository"
    git -C "$repo" worktree add --detach -q "$scratch" HEAD || die "cannot create $scratch"
fi
gitx() { git -C "$scratch" -c user.name=attn-mutants -c user.email=attn-mutants@localhost "$@"; }
restore() { gitx checkout -q -f -- . 2>/dev/null; gitx clean -fdq 2>/dev/null; }
gitx checkout -q -f --detach "$(git -C "$repo" rev-parse HEAD)" || die "cannot check out HEAD"
gitx clean -fdq
# uncommitted changes to tracked files, and untracked files git does not ignore
git -C "$repo" diff --binary HEAD | gitx apply --allow-empty --whitespace=nowarn ||
    die "cannot carry the uncommitted changes into $scratch"
(cd "$repo" && git ls-files -z --others --exclude-standard) |
    (cd "$repo" && xargs -0 -r cp --parents -t "$scratch") || die "cannot copy untracked files"
if [ -n "$(gitx status --porcelain)" ]; then
    { gitx add -A && gitx commit -q --no-verify -m "mutants: base (uncommitted state)"; } ||
        die "cannot record the base state in $scratch"
fi
trap restore EXIT

build=$scratch/build-mutants
out=$build/mutants
export ATTN_CL_CACHE_DIR=$build/cl-cache POCL_CACHE_DIR=$build/pocl-cache
mkdir -p "$out" "$ATTN_CL_CACHE_DIR" "$POCL_CACHE_DIR" || die "cannot create $out"
attn=$build/tools/attn

build_tool() { # build_tool LOG
    if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" "$scratch" -Dtests=false >"$1" 2>&1 || return 1
    fi
    ninja -C "$build" tools/attn >>"$1" 2>&1
}

# verdict JSON LOG LISTFILE: "fail GATE CASE" from a report (JSON), or for a run that died
# (LOG only) "fail crash CASE" with the first case of the list (LISTFILE) the log does not show
verdict() {
    python3 - "$@" <<'EOF'
import json, os, sys
js, log, lst = sys.argv[1:4]
if not (os.path.exists(js) and os.path.getsize(js) > 0):
    done = set()
    for line in open(log, errors="replace"):
        if line.split(" ", 1)[0] in ("PASSED", "FAILED", "MISTRUSTED", "SKIPPED"):
            done.add(line.split(" ", 1)[1].split(" | ")[0].strip())
    todo = [l.strip() for l in open(lst) if l.startswith("sdpa ")]
    left = [c for c in todo if c not in done]
    print("fail crash", left[0] if left else "-")
    sys.exit()
names = {1: "1 invariants", 2: "2 bound", 3: "3 NMSE", 4: "4 calibration", 5: "5 trust",
         6: "6 rounding"}
cases = json.load(open(js))["cases"]
bad = [c for c in cases if c.get("status") not in ("PASSED", "SKIPPED")]
if not bad:
    print("fail exit-status-1 -")
    sys.exit()
c = bad[0]
gates = [c[t]["gate"] for t in ("out", "lse")
         if isinstance(c.get(t), dict) and c[t].get("verdict") not in (None, "PASSED")
         and c[t].get("gate")]
reason = c.get("reason") or ""
if any(w in reason for w in ("crashed", "signal", "timed out", "without a result")):
    gate = "crash"
elif c.get("guard_bytes") or c.get("stray_bytes") or "guard" in reason or "modified" in reason \
        or "outside the output" in reason:
    gate = "guard"
elif gates:
    gate = names.get(min(gates), "gate %d" % min(gates))
elif c.get("unwritten"):
    gate = "poison"
else:
    gate = "error"
print("fail", gate.replace(" ", "_"), c["case"])
EOF
}

# run_conform NAME BACKEND LIST MODE: runs one list (quick/full) in one memory mode (- for the
# backend's default); prints "pass - -" or "fail GATE CASE" (spaces in GATE as _)
isolate=()
run_conform() {
    local name=$1 be=$2 list=$3 mode=$4 t=$timeout_full
    local base=$out/$name.$list.$mode
    local args=(conform --backend "$be" "${isolate[@]}")
    [ "$list" = quick ] && { args+=(--quick); t=$timeout_quick; }
    [ "$mode" != - ] && args+=(--memory "$mode")
    rm -f "$base.json"
    timeout -k 10 "$t" "$attn" "${args[@]}" --json "$base.json" >"$base.log" 2>&1
    local rc=$?
    if [ $rc = 0 ]; then
        echo "pass - -"
    elif [ $rc = 1 ] && [ -s "$base.json" ]; then
        verdict "$base.json" "$base.log" /dev/null
    else # a signal, an abort, a timeout (124/137): no report
        "$attn" "${args[@]}" --list >"$base.list" 2>/dev/null
        verdict /dev/null "$base.log" "$base.list"
    fi
}

modes_of() { [ "$1" = opencl ] && echo "device host" || echo "-"; }

# ---- baseline: the unmutated tree builds and passes its quick lists ----
start=$(date +%s)
restore
echo "run.sh: scratch $scratch; building the unmutated tree" >&2
build_tool "$out/base.build.log" || die "the unmutated tree does not build (see $out/base.build.log)"
# with --isolate a crash, abort or hang fails its case and the run goes on (gate "crash");
# without it the whole run dies and the case it died in is taken from its log
help=$("$attn" conform --help 2>&1)
if grep -q -- '--isolate' <<<"$help"; then
    isolate=(--isolate)
    grep -q -- '--timeout' <<<"$help" && isolate+=(--timeout "$timeout_case")
fi
declare -A used
for n in "${names[@]}"; do used[${backend[$n]}]=1; done
for be in cpu opencl ref; do
    [ -n "${used[$be]:-}" ] || continue
    for mode in $(modes_of "$be"); do
        read -r st gate fcase < <(run_conform base "$be" quick "$mode")
        [ "$st" = pass ] || die "unmutated tree fails the quick list on $be ($mode): $gate $fcase"
    done
done

# ---- the mutants ----
declare -A result rgate rcase
errors=0
stamp=$out/.stamp
for n in "${names[@]}"; do
    be=${backend[$n]}
    t0=$(date +%s)
    touch "$stamp"
    restore
    if ! gitx apply --whitespace=nowarn "$mutdir/$n.patch" 2>"$out/$n.apply.log"; then
        result[$n]="error: patch does not apply"; errors=$((errors + 1)); continue
    fi
    if ! build_tool "$out/$n.build.log"; then
        result[$n]="error: build failed"; errors=$((errors + 1)); continue
    fi
    result[$n]=survived; rgate[$n]="-"; rcase[$n]="-"
    for list in quick full; do
        for mode in $(modes_of "$be"); do
            read -r st gate fcase < <(run_conform "$n" "$be" "$list" "$mode")
            if [ "$st" = fail ]; then
                where=$list; [ "$mode" != - ] && where="$list ($mode)"
                result[$n]=$where; rgate[$n]=${gate//_/ }; rcase[$n]=$fcase
                break 2
            fi
        done
    done
    # programs built from mutated kernel sources serve no other run: drop them from the caches
    if grep -q '^diff --git a/cl/' "$mutdir/$n.patch"; then
        find "$ATTN_CL_CACHE_DIR" "$POCL_CACHE_DIR" -newer "$stamp" -type f -delete 2>/dev/null
        find "$POCL_CACHE_DIR" -mindepth 1 -type d -empty -delete 2>/dev/null
    fi
    printf 'run.sh: %-32s %-7s %-16s %-16s %s (%ds)\n' "$n" "$be" "${result[$n]}" \
        "${rgate[$n]:-}" "${rcase[$n]:-}" $(($(date +%s) - t0)) >&2
done
restore
trap - EXIT

# ---- report ----
total=${#names[@]}; nq=0; nf=0; ns=0; ne=0; bad_equiv=0
{
    echo "| mutant | backend | bug | caught by | gate | first failing case (or why equivalent) |"
    echo "|---|---|---|---|---|---|"
    for n in "${names[@]}"; do
        r=${result[$n]}; g=${rgate[$n]:--}; c=${rcase[$n]:--}
        if [ -n "${equiv[$n]}" ]; then
            if [ "$r" = survived ]; then
                ne=$((ne + 1)); r="equivalent"; c=${equiv[$n]}
            else
                bad_equiv=$((bad_equiv + 1)); r="$r (marked equivalent!)"
            fi
        fi
        case $r in
        quick*) nq=$((nq + 1)); nf=$((nf + 1)) ;;
        full*) nf=$((nf + 1)) ;;
        survived) ns=$((ns + 1)) ;;
        esac
        [ "$c" != - ] && [ -z "${equiv[$n]}" ] && c="\`$c\`"
        echo "| $n | ${backend[$n]} | ${what[$n]} | $r | $g | $c |"
    done
} >"$out/table.md"
live=$((total - ne))
pct() { [ "$2" -gt 0 ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }' || echo "-"; }
summary="$total mutants, caught by quick $nq ($(pct $nq $live)), by full $nf ($(pct $nf $live)), survived $ns, equivalent $ne"
echo "$summary" >>"$out/table.md"
cat "$out/table.md"
[ -n "$table_out" ] && cp "$out/table.md" "$table_out"
echo
echo "percentages of the $live non-equivalent mutants; the full list includes the quick one." \
     "$(($(date +%s) - start)) s on $(nproc) cores; logs and JSON in $out"
if [ $errors -gt 0 ] || [ $bad_equiv -gt 0 ]; then
    echo "run.sh: $errors harness errors, $bad_equiv mutants marked equivalent but caught" >&2
    exit 2
fi
[ $ns -eq 0 ] || exit 1
exit 0
