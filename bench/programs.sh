#!/usr/bin/env bash
# bench/programs.sh - real programs (python3, sqlite3, git) under glibc,
# mempool and mimalloc: wall time and peak RSS, interleaved, medians.
#
#   bash bench/programs.sh [build-dir]        RUNS=5 PROGRAMS="python3 sqlite3 git"
#
# The workloads are the preload test's (tests/preload/workloads.sh).  Peak
# RSS is GNU time's %M: the biggest process of the run (git runs many).
# Prints one table with the ratios of mempool to glibc and to mimalloc.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/bench/lib.sh"
. "$ROOT/tests/preload/workloads.sh"
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
RUNS=${RUNS:-5}
PROGRAMS=${PROGRAMS:-"python3 sqlite3 git"}
MP_SO=$BUILD/libmempool.so
MI_SO=$(bench_find_so mimalloc || true)
[ -x /usr/bin/time ] || { echo "bench/programs.sh needs GNU time (apt-get install time)" >&2; exit 1; }
[ -e "$MP_SO" ] || { echo "build $MP_SO first (make)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-8s %-9s %10s %10s   %s\n' program allocator time_s rss_kb "(medians of $RUNS, interleaved)"
for prog in $PROGRAMS; do
    command -v "$prog" >/dev/null 2>&1 || { echo "$prog: not installed, skipped"; continue; }
    workload_write "$prog" "$work/run" || continue
    for a in glibc mempool mimalloc; do : >"$work/$a.t"; : >"$work/$a.m"; done
    for r in $(seq 1 "$RUNS"); do
        for a in glibc mempool mimalloc; do
            case $a in glibc) so= ;; mempool) so=$MP_SO ;; mimalloc) so=$MI_SO ;; esac
            [ $a = mimalloc ] && [ -z "$so" ] && continue
            (cd "$work" && env ${so:+LD_PRELOAD=$so} /usr/bin/time -f '%e %M' -o "$work/tm" ./run >/dev/null 2>&1)
            read -r t m <"$work/tm"
            echo "$t" >>"$work/$a.t"
            echo "$m" >>"$work/$a.m"
        done
    done
    for a in glibc mempool mimalloc; do
        [ -s "$work/$a.t" ] || continue
        t=$(median <"$work/$a.t"); m=$(median <"$work/$a.m")
        eval "T_$a=$t M_$a=$m"
        printf '%-8s %-9s %10s %10s\n' "$prog" "$a" "$t" "$m"
    done
    awk -v tg="$T_glibc" -v tm="$T_mempool" -v mg="$M_glibc" -v mm="$M_mempool" \
        -v ti="${T_mimalloc:-0}" -v mi="${M_mimalloc:-0}" -v p="$prog" 'BEGIN {
        printf "%-8s mempool/glibc time %.2f rss %.2f", p, tm / tg, mm / mg
        if (ti > 0) printf "; mimalloc/glibc time %.2f rss %.2f", ti / tg, mi / mg
        printf "\n" }'
done
