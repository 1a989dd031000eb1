#!/bin/bash
# count.sh <builddir> [--report]
#
# Instructions per malloc/free pair on the fast path, counted with callgrind
# on <builddir>/tests/fastpath_loop (see fastpath_loop.c) for the patterns
# single and batch and the sizes 64 and 4096:
#
#   per pair = (Ir(2M pairs) - Ir(1M pairs)) / 1M   for the alloc loop
#            - (Ir(2M pairs) - Ir(1M pairs)) / 1M   for the noop loop
#
# The difference of two run lengths cancels start-up and one-time costs; the
# noop loop cancels the loop's own instructions (and the PLT jumps, which
# the noop calls mirror; the noop functions' two returns and one lea are
# subtracted too, so a figure is the allocator's instructions minus 3).
#
# Without --report (the test): mempool (LD_PRELOAD=<builddir>/libmempool.so)
# is compared with tests/fastpath/limits.txt ("<pattern> <size> <limit>"
# lines); a figure above limit * 1.05 fails.  Exit 0 = pass, 1 = fail,
# 77 = cannot run (no valgrind).
# With --report: the same figures for mempool, glibc, and jemalloc, tcmalloc
# and mimalloc where installed, as a table; no limits are applied.
set -u

usage() { echo "usage: $0 <builddir> [--report]" >&2; exit 2; }
[ $# -ge 1 ] || usage
report=0
[ "${2:-}" = "--report" ] && report=1
[ $# -le 2 ] || usage
[ $# -eq 1 ] || [ $report -eq 1 ] || usage

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" 2>/dev/null && pwd) || { echo "count.sh: no build directory $1" >&2; exit 2; }
loop=$build/tests/fastpath_loop
mempool_so=$build/libmempool.so
limits=$here/limits.txt

if ! command -v valgrind >/dev/null 2>&1; then
    echo "count.sh: valgrind is not installed; cannot count instructions" >&2
    exit 77
fi
for f in "$loop" "$mempool_so"; do
    [ -e "$f" ] || { echo "count.sh: $f is missing (make tests-build)" >&2; exit 2; }
done

M1=1000000
M2=2000000
patterns="single batch"
sizes="64 4096"

# ir <preload-or-empty> <args of fastpath_loop...>: prints the Ir total.
ir() {
    local pre=$1
    shift
    local out
    if [ -n "$pre" ]; then
        out=$(LD_PRELOAD=$pre valgrind --tool=callgrind --callgrind-out-file=/dev/null \
              "$loop" "$@" 2>&1 >/dev/null)
    else
        out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
              "$loop" "$@" 2>&1 >/dev/null)
    fi
    local rc=$?
    local n
    n=$(printf '%s\n' "$out" | sed -n 's/^==[0-9]*== Collected : \([0-9][0-9]*\).*/\1/p' | tail -n 1)
    if [ $rc -ne 0 ] || [ -z "$n" ]; then
        echo "count.sh: callgrind run failed (exit $rc): ${pre:+LD_PRELOAD=$pre }$loop $*" >&2
        printf '%s\n' "$out" | tail -n 15 >&2
        return 1
    fi
    echo "$n"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ir_delta <preload-or-empty> <alloc|noop> <pattern> <size>: prints
# Ir(M2) - Ir(M1); the two runs go in parallel.
ir_delta() {
    ir "$1" "$2" "$3" "$4" $M1 >"$tmp/a" &
    local pid=$!
    local b
    b=$(ir "$1" "$2" "$3" "$4" $M2)
    local rb=$?
    wait $pid || return 1
    [ $rb -eq 0 ] || return 1
    echo $((b - $(cat "$tmp/a")))
}

# The noop loop's instructions, per pattern (size does not matter).
declare -A noop
for pat in $patterns; do
    noop[$pat]=$(ir_delta "" noop "$pat" 64) || exit 1
done

# per_pair <preload-or-empty> <pattern> <size>: prints e.g. 23.4
per_pair() {
    local d
    d=$(ir_delta "$1" alloc "$2" "$3") || return 1
    awk -v d="$d" -v z="${noop[$2]}" -v m=$((M2 - M1)) \
        'BEGIN { printf "%.1f\n", (d - z) / m }'
}

if [ $report -eq 0 ]; then
    [ -r "$limits" ] || { echo "count.sh: $limits is missing" >&2; exit 2; }
    echo "fastpath: mempool instructions per malloc/free pair (callgrind, loop subtracted)"
    fail=0
    for pat in $patterns; do
        for size in $sizes; do
            limit=$(awk -v p="$pat" -v s="$size" '$1 == p && $2 == s { print $3 }' "$limits" | tail -n 1)
            fig=$(per_pair "$mempool_so" "$pat" "$size") || { fail=1; continue; }
            if [ -z "$limit" ]; then
                printf '  %-6s %5s: %7s   (no limit in limits.txt)\n' "$pat" "$size" "$fig"
                continue
            fi
            verdict=$(awk -v f="$fig" -v l="$limit" 'BEGIN { print (f <= l * 1.05) ? "ok" : "OVER" }')
            printf '  %-6s %5s: %7s   limit %s (+5%%)  %s\n' "$pat" "$size" "$fig" "$limit" "$verdict"
            [ "$verdict" = ok ] || fail=1
        done
    done
    if [ $fail -ne 0 ]; then
        echo "fastpath: FAIL"
        exit 1
    fi
    echo "fastpath: ok"
    exit 0
fi

# --report: a table over the allocators found.
names=(mempool glibc)
libs=("$mempool_so" "")
for cand in jemalloc:/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
            tcmalloc:/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
            mimalloc:/usr/lib/x86_64-linux-gnu/libmimalloc.so.2; do
    if [ -e "${cand#*:}" ]; then
        names+=("${cand%%:*}")
        libs+=("${cand#*:}")
    fi
done
echo "Instructions per malloc/free pair (callgrind; loop overhead subtracted;"
echo "(Ir(2M pairs) - Ir(1M pairs)) / 1M)"
printf '%-14s' "pattern size"
for n in "${names[@]}"; do printf '%10s' "$n"; done
printf '\n'
status=0
for pat in $patterns; do
    for size in $sizes; do
        printf '%-14s' "$pat $size"
        for i in "${!names[@]}"; do
            fig=$(per_pair "${libs[$i]}" "$pat" "$size") || { fig="error"; status=1; }
            printf '%10s' "$fig"
        done
        printf '\n'
    done
done
exit $status
