#!/usr/bin/env bash
# bench/compare.sh - one benchmark command under every allocator, by hand.
#
#   bash bench/compare.sh RUNS -- <command> [args...]
#   e.g. bash bench/compare.sh 5 -- build/bin/tb 8 300000 8 256 75
#
# Runs the command RUNS times under each allocator, interleaved (glibc,
# jemalloc, tcmalloc, mimalloc, mempool, then again ...), reads the key=value
# result line it prints (the last line containing " maxrss_kb="), and prints
# per allocator the median (min-max) of the primary metric and of maxrss_kb,
# and mempool's ratios to each (or, without mempool, the first allocator's).
#
# Environment:
#   METRIC=a,b      metrics to report (default: the first of mops, ops_s, ns,
#                   malloc_p99_ns, time_s that the command prints)
#   ALLOCATORS=...  subset/order, e.g. glibc,mempool
#   BUILD=build     where libmempool.so is (or MEMPOOL_SO=path)
#   RUN_TIMEOUT=180 seconds per run;  NO_INSTALL=1 never apt-get install

set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

usage() {
    echo "usage: bash bench/compare.sh RUNS -- <command> [args...]" >&2
    echo "  e.g. bash bench/compare.sh 5 -- build/bin/tb 8 300000 8 256 75" >&2
    exit 2
}
[ $# -ge 3 ] || usage
RUNS=$1
case "$RUNS" in ''|*[!0-9]*|0) usage ;; esac
[ "$2" = "--" ] || usage
shift 2

BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
MEMPOOL_SO=${MEMPOOL_SO:-$BUILD/libmempool.so}
case "$MEMPOOL_SO" in /*) ;; *) MEMPOOL_SO="$PWD/$MEMPOOL_SO" ;; esac

bench_setup_allocators "$MEMPOOL_SO"
[ "${#ALLOC_NAMES[@]}" -gt 0 ] || { echo "compare.sh: no allocator to run" >&2; exit 2; }
REF=mempool
printf '%s\n' "${ALLOC_NAMES[@]}" | grep -qx mempool || REF=${ALLOC_NAMES[0]}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mempool-compare.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
: >"$TMP/lines"

echo "compare: $RUNS run(s) per allocator of: $*"
echo "machine: $(bench_machine)"
total=$(( RUNS * ${#ALLOC_NAMES[@]} ))
n=0
fails=0
for ((r = 1; r <= RUNS; r++)); do
    for i in "${!ALLOC_NAMES[@]}"; do
        a=${ALLOC_NAMES[$i]}
        n=$((n + 1))
        [ -t 2 ] && printf '\r\033[K[%d/%d] %s run %d' "$n" "$total" "$a" "$r" >&2
        bench_run_under "${ALLOC_SOS[$i]}" "$TMP/out" "$TMP/err" "$@"
        rc=$?
        line=$(grep ' maxrss_kb=' "$TMP/out" | tail -n 1)
        if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
            fails=$((fails + 1))
            [ -t 2 ] && printf '\r\033[K' >&2
            printf '%s run %d FAILED (exit %d): %s\n' "$a" "$r" "$rc" \
                "$(tail -n 2 "$TMP/err" | tr '\n' ' ')" >&2
            continue
        fi
        case "$line" in
            "tb "*) line="$line tb_mops=$(bench_tb_mops "$line")" ;;
        esac
        printf '%s %s\n' "$a" "$line" >>"$TMP/lines"
    done
done
[ -t 2 ] && printf '\r\033[K' >&2

[ -s "$TMP/lines" ] || { echo "compare.sh: no run produced a result line" >&2; exit 1; }

# Pick the metrics.
if [ -n "${METRIC:-}" ]; then
    METRICS=$(printf '%s' "$METRIC" | tr ',' ' ')
else
    METRICS=""
    first=$(head -n 1 "$TMP/lines")
    for m in mops ops_s ns malloc_p99_ns time_s; do
        if [ -n "$(bench_get "$first" "$m")" ]; then METRICS=$m; break; fi
    done
    [ -n "$METRICS" ] || METRICS=time_s
fi

# tb prints mops with two decimals; use the more precise derived value.
awk -v allocs="${ALLOC_NAMES[*]}" -v ref="$REF" -v metrics="$METRICS" -v runs="$RUNS" '
function sortn(a, n,    i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
}
function med(al, m,    n, i, a) {
    n = cnt[al, m] + 0
    if (n == 0) { lo = hi = ""; return "" }
    for (i = 1; i <= n; i++) a[i] = val[al, m, i]
    sortn(a, n); lo = a[1]; hi = a[n]
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function higher(m) { return m ~ /(^mops$|ops_s$|per_s$|_mops$)/ }
function f(v) {
    if (v == "") return "-"
    if (v >= 10000 || v <= -10000) return sprintf("%.0f", v)
    return sprintf("%.4g", v)
}
{
    al = $1
    for (i = 3; i <= NF; i++) {
        split($i, kv, "=")
        k = kv[1]
        if (k == "mops" && $2 == "tb") continue
        if (k == "tb_mops") k = "mops"
        if (kv[2] ~ /^[0-9.eE+-]+$/) val[al, k, ++cnt[al, k]] = kv[2] + 0
    }
}
END {
    na = split(allocs, A, " ")
    nm = split(metrics, M, " ")
    M[++nm] = "maxrss_kb"
    # Cells first, then print with the widths they need.
    nc = 0
    T[0, ++nc] = "allocator"
    for (j = 1; j <= nm; j++) T[0, ++nc] = M[j] (higher(M[j]) ? " (+)" : "") " median (min-max)"
    for (j = 1; j <= nm; j++) T[0, ++nc] = ref "/x " (M[j] == "maxrss_kb" ? "rss" : M[j])
    for (j = 1; j <= nm; j++) refmed[j] = med(ref, M[j])
    for (i = 1; i <= na; i++) {
        c = 0
        T[i, ++c] = A[i]
        for (j = 1; j <= nm; j++) {
            v = med(A[i], M[j])
            s = f(v) (cnt[A[i], M[j]] > 1 ? " (" f(lo) "-" f(hi) ")" : "")
            if (cnt[A[i], M[j]] + 0 < runs) s = s " [" cnt[A[i], M[j]] + 0 "/" runs " ok]"
            T[i, ++c] = s
        }
        for (j = 1; j <= nm; j++) {
            v = med(A[i], M[j]); r = refmed[j]
            if (v == "" || r == "" || v <= 0 || r <= 0) s = "-"
            else s = sprintf("%.3f", higher(M[j]) ? v / r : r / v)
            T[i, ++c] = s
        }
    }
    for (c = 1; c <= nc; c++)
        for (i = 0; i <= na; i++)
            if (length(T[i, c]) > W[c]) W[c] = length(T[i, c])
    printf "\n"
    for (i = 0; i <= na; i++) {
        for (c = 1; c <= nc; c++) printf "%-*s%s", W[c], T[i, c], (c < nc ? "   " : "\n")
    }
    printf "\nratios: %s cost over the other allocator (time, 1/throughput, or memory); below 1 = %s better\n", ref, ref
}' "$TMP/lines"
[ "$fails" -eq 0 ] || echo "($fails failed run(s))"
