#!/usr/bin/env bash
# bench/run.sh - mempool's benchmark suite against glibc, jemalloc, tcmalloc
# and mimalloc.   Usage:  bash bench/run.sh [build-dir]     (make bench)
#
# Every case runs under every allocator, interleaved (A B C D E, A B C D E,
# ...) so that drift on a noisy machine hits all of them alike, RUNS times.
# The same binaries serve every allocator: the comparison allocators and
# mempool come in by LD_PRELOAD, glibc is the plain run.
#
# Environment:
#   RUNS=3          runs per case and allocator (QUICK: 1)
#   QUICK=1         the ~1 minute version: 1 run, a quarter of the work
#   THREADS=1,2,4,8 thread counts of the tb sweep and of bench_contention
#   SCALE=100       percent of the default amount of work per case
#   ALLOCATORS=...  subset/order, e.g. ALLOCATORS=glibc,mempool
#   ONLY=regex      only the cases whose label matches (grep -E)
#   MEMPOOL_SO=...  mempool's shared library (default <build>/libmempool.so)
#   RUN_TIMEOUT=180 seconds before one run is killed and counted as failed
#   NO_CHARTS=1     skip gnuplot;  NO_INSTALL=1  never apt-get install
#
# Output in <build>/bench/: results.csv (one row per run and metric),
# summary.md (also printed), time/rss/scaling .svg and .png charts, logs/
# (output of failed runs), raw.txt (every result line as printed).

set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN=$BUILD/bin
OUT=$BUILD/bench
MEMPOOL_SO=${MEMPOOL_SO:-$BUILD/libmempool.so}
case "$MEMPOOL_SO" in /*) ;; *) MEMPOOL_SO="$ROOT/$MEMPOOL_SO" ;; esac

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    RUNS=${RUNS:-1}
    SCALE=${SCALE:-25}
else
    RUNS=${RUNS:-3}
    SCALE=${SCALE:-100}
fi
THREADS=${THREADS:-1,2,4,8}
ONLY=${ONLY:-}

die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 2; }
case "$RUNS" in ''|*[!0-9]*) die "RUNS must be a positive integer, not '$RUNS'" ;; esac
case "$SCALE" in ''|*[!0-9]*) die "SCALE must be a positive integer (percent), not '$SCALE'" ;; esac
[ "$RUNS" -ge 1 ] || die "RUNS must be at least 1"
[ "$SCALE" -ge 1 ] || die "SCALE must be at least 1"
THREAD_LIST=$(printf '%s' "$THREADS" | tr ',' ' ')
for t in $THREAD_LIST; do
    case "$t" in ''|*[!0-9]*|0) die "THREADS must be a list of positive integers, not '$THREADS'" ;; esac
done
[ -n "$THREAD_LIST" ] || die "THREADS is empty"

mkdir -p "$OUT" "$OUT/logs" || exit 1
rm -f "$OUT"/logs/*.log "$OUT"/scaling_* "$OUT"/time.* "$OUT"/rss.* "$OUT"/scaling.*

# ---- binaries -----------------------------------------------------------
# make bench builds them; build what is missing or stale when run by hand.
CFLAGS_BENCH="-std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
-Wmissing-prototypes -Wno-unused-parameter"
build_one() {
    local src=$1 bin=$2 libs=$3
    if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
        mkdir -p "$(dirname "$bin")"
        bench_log "bench: building $bin"
        # shellcheck disable=SC2086
        ${CC:-cc} $CFLAGS_BENCH -Iinclude "$src" -o "$bin" $libs || die "could not build $bin"
    fi
}
build_one tools/tb.c "$BIN/tb" "-lpthread -lm"
for src in bench/*.c; do
    build_one "$src" "$BIN/$(basename "$src" .c)" "-lpthread -lm -ldl"
done

# ---- allocators -----------------------------------------------------------
[ "${NO_CHARTS:-0}" = 1 ] || BENCH_WANT_GNUPLOT=1
bench_setup_allocators "$MEMPOOL_SO"
[ "${#ALLOC_NAMES[@]}" -gt 0 ] || die "no allocator to run"
REF=mempool
have_mempool=0
for a in "${ALLOC_NAMES[@]}"; do [ "$a" = mempool ] && have_mempool=1; done
if [ "$have_mempool" = 0 ]; then
    REF=${ALLOC_NAMES[0]}
    bench_log "bench: mempool is not in this run; ratios are taken against $REF instead"
fi

# ==== explicit allocators (issue 6) ==================================================
# slab and pool against mp_malloc, glibc malloc and mimalloc's malloc for
# fixed-size objects; arena (and heap) against malloc+free for a parse-like
# workload; heap destroy against freeing the objects one by one.  The x_
# programs take the allocator as an argument and dlopen libmempool.so, so
# their "malloc" kind is whatever the process has: glibc when run plainly,
# mimalloc under LD_PRELOAD.  Runs are interleaved across allocators, RUNS
# times; medians go to <build>/bench/explicit.md (and onto summary.md),
# every run to explicit.csv.  This section is defined here and run at the
# end of the script; EXPLICIT_ONLY=1 runs only it, NO_EXPLICIT=1 skips it.
#   X_THREADS=1,2,8   thread counts of the fixed-size cases
explicit_run() {
    local xth mi csv md raw tmp nc c r i k a line v m rc label
    xth=$(printf '%s' "${X_THREADS:-1,2,8}" | tr ',' ' ')
    mi=$(bench_find_so mimalloc) || mi=""
    [ -n "$mi" ] || bench_log "bench: explicit: mimalloc not found, its column stays empty (apt-get install libmimalloc2.0)"
    csv=$OUT/explicit.csv
    md=$OUT/explicit.md
    raw=$OUT/explicit_raw.txt
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/mempool-xbench.XXXXXX") || return 1
    # A case: table, label, metric, the kinds (name=argument[@preload]) and
    # the command, @K@ standing for the kind's argument.
    local -a XT=() XL=() XM=() XK=() XC=()
    xcase() {
        if [ -n "$ONLY" ] && ! printf '%s\n' "$2" | grep -Eq -- "$ONLY"; then return; fi
        XT+=("$1"); XL+=("$2"); XM+=("$3"); XK+=("$4"); shift 4; XC+=("$*")
    }
    xsc() { local v=$(( ($1 * SCALE + 50) / 100 )); [ "$v" -ge 1 ] || v=1; echo "$v"; }
    local fixed_kinds="slab=slab pool=pool pool_cache=poolc mp_malloc=mp glibc=malloc mimalloc=malloc@mimalloc"
    local s t pairs
    for s in 64 256; do
        for t in $xth; do
            pairs=$(( $(xsc 20000000) / t )); [ "$pairs" -ge 1 ] || pairs=1
            xcase fixed "$s B ${t}t pairs" mops "$fixed_kinds" "$BIN/x_fixed" @K@ "$s" "$t" "$pairs" 1
        done
    done
    for t in 1 8; do
        pairs=$(( $(xsc 20000000) / t ))
        xcase fixed "64 B ${t}t batch100" mops "$fixed_kinds" "$BIN/x_fixed" @K@ 64 "$t" "$pairs" 100
    done
    xcase parse "100k objects x $(xsc 100) rounds" ns \
        "arena=arena heap=heap mp_malloc=mp glibc=malloc mimalloc=malloc@mimalloc" \
        "$BIN/x_arena" @K@ 100000 "$(xsc 100)"
    xcase release "1M objects 16-256 B" release_ms \
        "heap_destroy=destroy heap_free=heapfree mp_free=mpfree glibc=free mimalloc=free@mimalloc" \
        "$BIN/x_heap" @K@ 1000000 16 256
    nc=${#XL[@]}
    if [ "$nc" -eq 0 ]; then
        bench_log "bench: explicit: no case matches ONLY='$ONLY'"
        rm -rf "$tmp"
        return 0
    fi
    echo
    echo "explicit allocators: $nc cases, RUNS=$RUNS, SCALE=$SCALE%, threads: $xth"
    printf 'case,allocator,run,metric,value\n' >"$csv"
    : >"$raw"
    for ((c = 0; c < nc; c++)); do
        read -r -a kinds <<<"${XK[$c]}"
        : >"$tmp/case"
        for ((r = 1; r <= RUNS; r++)); do
            for k in "${kinds[@]}"; do
                a=${k%%=*}; v=${k#*=}; m=${v%%@*}
                local so=""
                if [ "$v" != "$m" ]; then
                    [ -n "$mi" ] || continue
                    so=$mi
                fi
                read -r -a cmd <<<"${XC[$c]//@K@/$m}"
                bench_run_under "$so" "$tmp/out" "$tmp/err" "${cmd[@]}"
                rc=$?
                line=$(grep -E '^x_' "$tmp/out" | tail -n 1)
                if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
                    bench_log "bench: explicit: FAILED ${XL[$c]} under $a (exit $rc): $(tail -n 2 "$tmp/err" | tr '\n' ' ')"
                    printf '%s,%s,%d,%s,NA\n' "${XL[$c]}" "$a" "$r" "${XM[$c]}" >>"$csv"
                    continue
                fi
                printf '%s run=%d %s\n' "$a" "$r" "$line" >>"$raw"
                v=$(bench_get "$line" "${XM[$c]}")
                printf '%s,%s,%d,%s,%s\n' "${XL[$c]}" "$a" "$r" "${XM[$c]}" "${v:-NA}" >>"$csv"
                printf '%s %s\n' "$a" "${v:-NA}" >>"$tmp/case"
            done
        done
        # medians, one line per case
        label=$(for k in "${kinds[@]}"; do
            a=${k%%=*}
            awk -v a="$a" '$1 == a && $2 != "NA" { v[++n] = $2 + 0 }
                END {
                    if (n == 0) { printf "%s -  ", a; exit }
                    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
                    printf "%s %.4g  ", a, (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
                }' "$tmp/case"
        done)
        printf '%-28s %-12s %s\n' "${XL[$c]}" "[${XM[$c]}]" "$label"
        printf '%s\t%s\t%s\t%s\n' "${XT[$c]}" "${XL[$c]}" "${XM[$c]}" "$label" >>"$tmp/medians"
    done
    # the tables
    awk -F'\t' -v RUNS="$RUNS" -v MACHINE="$(bench_machine)" -v MI="${mi:-not found}" '
        function cell(x) { return x == "" ? "-" : x }
        function ratio(a, b) { return (a == "" || b == "" || a + 0 == 0 || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
        {
            n = split($4, f, "  "); delete v; order = ""
            for (i = 1; i <= n; i++) { split(f[i], kv, " "); if (kv[1] == "") continue
                v[kv[1]] = (kv[2] == "-" ? "" : kv[2]); order = order (order == "" ? "" : " ") kv[1] }
            rows[$1] = rows[$1] sprintf("| %s |", $2)
            nk = split(order, ks, " ")
            for (i = 1; i <= nk; i++) rows[$1] = rows[$1] " " cell(v[ks[i]]) " |"
            if ($1 == "fixed") rows[$1] = rows[$1] sprintf(" %s | %s |", ratio(v["pool_cache"], v["mp_malloc"]), ratio(v["pool_cache"], v["mimalloc"]))
            if ($1 == "parse") rows[$1] = rows[$1] sprintf(" %s | %s |", ratio(v["glibc"], v["arena"]), ratio(v["mimalloc"], v["arena"]))
            if ($1 == "release") rows[$1] = rows[$1] sprintf(" %s | %s |", ratio(v["heap_free"], v["heap_destroy"]), ratio(v["mp_free"], v["heap_destroy"]))
            rows[$1] = rows[$1] "\n"
            heads[$1] = order
        }
        END {
            print "## Explicit allocators (issue 6)"
            print ""
            printf "- %s; medians of %d interleaved runs; mimalloc: %s\n", MACHINE, RUNS, MI
            print "- the x_ programs call mempool through dlsym pointers (as a PLT would) and malloc through the PLT"
            print ""
            split("fixed parse release", tabs, " ")
            title["fixed"] = "Fixed-size objects: alloc+free pairs, Mops/s over all threads (higher is better)"
            extra["fixed"] = " pool_cache/mp_malloc | pool_cache/mimalloc |"
            title["parse"] = "Parse-like workload: ns per object, allocation and release (lower is better)"
            extra["parse"] = " glibc/arena | mimalloc/arena |"
            title["release"] = "Releasing a million objects: ms (lower is better)"
            extra["release"] = " heap_free/destroy | mp_free/destroy |"
            for (t = 1; t <= 3; t++) {
                k = tabs[t]; if (!(k in rows)) continue
                print "### " title[k]; print ""
                nk = split(heads[k], ks, " "); h = "| case |"; s = "|---|"
                for (i = 1; i <= nk; i++) { h = h " " ks[i] " |"; s = s "---|" }
                print h extra[k]; print s "---|---|"
                printf "%s", rows[k]; print ""
            }
        }' "$tmp/medians" >"$md"
    echo
    cat "$md"
    [ -f "$OUT/summary.md" ] && [ "${EXPLICIT_ONLY:-0}" != 1 ] && { echo; cat "$md"; } >>"$OUT/summary.md"
    echo "explicit: $md, $csv"
    rm -rf "$tmp"
}
if [ "${EXPLICIT_ONLY:-0}" = 1 ]; then
    explicit_run
    exit $?
fi
# ==== end of the explicit allocators' section (run at the end of the script) ==========

# ---- cases ----------------------------------------------------------------
# A case: workload (program), params (no commas), chart label, metrics (first
# = headline), group (scaling:<range>:<threads> or -), command.
C_WL=(); C_PAR=(); C_LAB=(); C_MET=(); C_GRP=(); C_CMD=()
add_case() {
    local wl=$1 par=$2 lab=$3 met=$4 grp=$5
    shift 5
    if [ -n "$ONLY" ] && ! printf '%s %s\n' "$lab" "$wl $par" | grep -Eq -- "$ONLY"; then
        return
    fi
    C_WL+=("$wl"); C_PAR+=("$par"); C_LAB+=("$lab"); C_MET+=("$met"); C_GRP+=("$grp")
    C_CMD+=("$*")
}
# sc N: N scaled by SCALE percent, at least 1.
sc() { local v=$(( ($1 * SCALE + 50) / 100 )); [ "$v" -ge 1 ] || v=1; echo "$v"; }

# tb at the seed's settings (never scaled: it is the reference point).
add_case tb "threads=8 iters=300000 size=8-256 keep=75" "tb seed 8t 8-256" mops - \
    "$BIN/tb" 8 300000 8 256 75

# tb sweep: the total work of a size range is split over the threads.
for spec in 256:16000000 512:12000000 4096:5000000 262144:16000; do
    max=${spec%%:*}
    total=$(sc "${spec#*:}")
    case $max in 262144) rname=8-256K ;; *) rname=8-$max ;; esac
    for t in $THREAD_LIST; do
        it=$(( total / t )); [ "$it" -ge 1 ] || it=1
        add_case tb "threads=$t iters=$it size=$rname keep=75" "tb ${t}t $rname" mops \
            "scaling:$rname:$t" "$BIN/tb" "$t" "$it" 8 "$max" 75
    done
done

for s in 64 256 4096; do
    add_case bench_alloc "size=$s iters=$(sc 20000000)" "alloc $s" ns - \
        "$BIN/bench_alloc" "$s" "$(sc 20000000)" 1
done

for spec in 64:8000000 4096:1000000 262144:1000; do
    s=${spec%%:*}; it=$(sc "${spec#*:}")
    add_case bench_vs_malloc "size=$s iters=$it" "malloc-calloc $s" \
        "time_s malloc_ns calloc_ns" - "$BIN/bench_vs_malloc" "$s" "$it" 8
done

add_case bench_batch "count=10000 size=64 rounds=$(sc 1000) order=fifo" "batch 10k fifo" ns - \
    "$BIN/bench_batch" 10000 64 "$(sc 1000)" 0
add_case bench_batch "count=10000 size=64 rounds=$(sc 1000) order=shuffled" "batch 10k shuffled" ns - \
    "$BIN/bench_batch" 10000 64 "$(sc 1000)" 2

for t in $THREAD_LIST; do
    add_case bench_contention "threads=$t ops=$(sc 40000000) size=16-128" "contention ${t}t" mops - \
        "$BIN/bench_contention" "$t" "$(sc 40000000)" 16 128 8
done

# The seed's rounds test: 100 rounds of 10,000 (QUICK scales the rounds).
for t in 1 5 10; do
    for s in 64 1024; do
        add_case bench_rounds "threads=$t size=$s rounds=$(sc 100) count=10000" "rounds ${t}t $s" \
            "time_s mops" - "$BIN/bench_rounds" "$t" "$s" "$(sc 100)" 10000
    done
done

add_case bench_larson "threads=4 generations=$(sc 300) ops=5000 slots=1000 size=8-1024" \
    "larson 4t" mops - "$BIN/bench_larson" 4 "$(sc 300)" 5000 1000 8 1024
add_case bench_prodcons "pairs=1 items=$(sc 3000000) size=16-512" "prodcons 1p" mops - \
    "$BIN/bench_prodcons" 1 "$(sc 3000000)" 16 512 1024
add_case bench_prodcons "pairs=2 items=$(sc 1500000) size=16-512" "prodcons 2p" mops - \
    "$BIN/bench_prodcons" 2 "$(sc 1500000)" 16 512 1024
add_case bench_falseshare "mode=passive threads=2 iters=$(sc 400000)" "falseshare passive" time_s - \
    "$BIN/bench_falseshare" 0 2 "$(sc 400000)" 100 8
add_case bench_falseshare "mode=active threads=2 iters=$(sc 400000)" "falseshare active" time_s - \
    "$BIN/bench_falseshare" 1 2 "$(sc 400000)" 100 8
fmb=$(sc 64); [ "$fmb" -ge 8 ] || fmb=8
add_case bench_frag "target_mb=$fmb cycles=6 keep=10" "fragmentation" \
    "time_s rss_end_kb rss_empty_kb" - "$BIN/bench_frag" "$fmb" 6 10
add_case bench_realloc "mode=append bufs=32 max=65536 step=64 rounds=$(sc 100)" "realloc append" \
    time_s - "$BIN/bench_realloc" 0 32 65536 64 "$(sc 100)"
add_case bench_realloc "mode=geometric bufs=4 max=8388608 rounds=$(sc 10)" "realloc geometric" \
    time_s - "$BIN/bench_realloc" 1 4 8388608 16 "$(sc 10)"
add_case bench_large "iters=$(sc 300) size=256K-32M live=4" "large 256K-32M" time_s - \
    "$BIN/bench_large" "$(sc 300)" 262144 33554432 4 1
add_case bench_churn "threads=$(sc 4000) concurrent=4 ops=2000 size=16-1024" "thread churn" \
    "time_s rss_end_kb" - "$BIN/bench_churn" "$(sc 4000)" 4 2000 16 1024
add_case bench_latency "iters=$(sc 2000000) size=8-1024 live=4096" "latency" \
    "malloc_p99_ns malloc_p50_ns malloc_p999_ns malloc_max_ns free_p50_ns free_p99_ns free_p999_ns free_max_ns time_s" \
    - "$BIN/bench_latency" "$(sc 2000000)" 8 1024 4096 1

NC=${#C_WL[@]}
[ "$NC" -gt 0 ] || die "no case matches ONLY='$ONLY'"
NA=${#ALLOC_NAMES[@]}
TOTAL=$(( NC * RUNS * NA ))

# ---- header -----------------------------------------------------------------
MACHINE=$(bench_machine)
DATE=$(date '+%Y-%m-%d %H:%M:%S %Z')
{
    printf '%s\t%s\n' "date" "$DATE"
    printf '%s\t%s\n' "machine" "$MACHINE"
    for i in "${!ALLOC_NAMES[@]}"; do
        printf '%s\t%s %s\n' "${ALLOC_NAMES[$i]}" "$(bench_version "${ALLOC_NAMES[$i]}")" \
            "${ALLOC_SOS[$i]:-(no preload)}"
    done
} >"$OUT/env.txt"

echo "mempool benchmark suite - $DATE"
echo "machine: $MACHINE"
echo "allocators: ${ALLOC_NAMES[*]}  (ratios against $REF)"
echo "cases: $NC, runs per case: $RUNS, scale: $SCALE%, threads: $THREADS$([ "$QUICK" = 1 ] && echo ', QUICK')"
echo "total runs: $TOTAL"
echo

CSV=$OUT/results.csv
RAW=$OUT/raw.txt
printf 'workload,params,allocator,run,metric,value,maxrss_kb\n' >"$CSV"
: >"$RAW"
CASES_TSV=$OUT/cases.tsv
: >"$CASES_TSV"
for ((c = 0; c < NC; c++)); do
    printf '%d\t%s\t%s\t%s\t%s\t%s\n' "$c" "${C_WL[$c]}" "${C_PAR[$c]}" "${C_LAB[$c]}" \
        "${C_MET[$c]}" "${C_GRP[$c]}" >>"$CASES_TSV"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mempool-bench.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'echo; echo "bench/run.sh: interrupted; partial results in $CSV" >&2; exit 130' INT TERM

now() { date +%s.%N; }
hms() { awk -v s="$1" 'BEGIN { s = int(s + 0.5); printf "%d:%02d", s / 60, s % 60 }'; }
T_START=$(now)
# On a terminal the progress line rewrites itself; in a log it is one line per run.
if [ -t 2 ]; then PROG_PRE='\r\033[K'; PROG_POST=''; else PROG_PRE=''; PROG_POST='\n'; fi
progress() {
    local done=$1 what=$2 el eta
    el=$(awk -v a="$T_START" -v b="$(now)" 'BEGIN { print b - a }')
    if [ "$done" -gt 0 ]; then
        eta="~$(hms "$(awk -v e="$el" -v d="$done" -v t="$TOTAL" 'BEGIN { print e / d * (t - d) }')") left"
    else
        eta="estimating"
    fi
    # shellcheck disable=SC2059
    printf "${PROG_PRE}[%4d/%d  %s elapsed  %s] %s${PROG_POST}" "$((done + 1))" "$TOTAL" "$(hms "$el")" "$eta" "$what" >&2
}

# ---- the runs ------------------------------------------------------------------
done_runs=0
failures=0
for ((c = 0; c < NC; c++)); do
    read -r -a cmd <<<"${C_CMD[$c]}"
    prog=$(basename "${cmd[0]}")
    read -r -a mets <<<"${C_MET[$c]}"
    : >"$TMP/case"
    for ((r = 1; r <= RUNS; r++)); do
        for ((i = 0; i < NA; i++)); do
            a=${ALLOC_NAMES[$i]}
            progress "$done_runs" "${C_LAB[$c]}: $a (run $r/$RUNS)"
            bench_run_under "${ALLOC_SOS[$i]}" "$TMP/out" "$TMP/err" "${cmd[@]}"
            rc=$?
            line=$(bench_result_line "$prog" "$TMP/out")
            done_runs=$((done_runs + 1))
            if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
                failures=$((failures + 1))
                log="$OUT/logs/$(printf '%s' "${C_LAB[$c]}" | tr -c 'A-Za-z0-9.-' '_')-$a-$r.log"
                {
                    echo "command: ${C_CMD[$c]}"
                    echo "allocator: $a ${ALLOC_SOS[$i]}"
                    echo "exit status: $rc$([ "$rc" = 124 ] && echo " (timed out after ${RUN_TIMEOUT:-180} s)")"
                    echo "--- stdout"; cat "$TMP/out"
                    echo "--- stderr"; cat "$TMP/err"
                } >"$log"
                [ -t 2 ] && printf '\r\033[K' >&2
                printf 'bench: FAILED %s under %s (run %d, exit %d): see %s\n' \
                    "${C_LAB[$c]}" "$a" "$r" "$rc" "$log" >&2
                for m in "${mets[@]}"; do
                    printf '%s,%s,%s,%d,%s,NA,NA\n' "${C_WL[$c]}" "${C_PAR[$c]}" "$a" "$r" "$m" >>"$CSV"
                done
                continue
            fi
            printf '%s run=%d %s\n' "$a" "$r" "$line" >>"$RAW"
            rss=$(bench_get "$line" maxrss_kb)
            for m in "${mets[@]}"; do
                v=$(bench_get "$line" "$m")
                [ "$prog" = tb ] && [ "$m" = mops ] && v=$(bench_tb_mops "$line")
                printf '%s,%s,%s,%d,%s,%s,%s\n' "${C_WL[$c]}" "${C_PAR[$c]}" "$a" "$r" "$m" \
                    "${v:-NA}" "${rss:-NA}" >>"$CSV"
                [ "$m" = "${mets[0]}" ] && printf '%s %s\n' "$a" "${v:-NA}" >>"$TMP/case"
            done
        done
    done
    # One line per case with the medians of its headline metric.
    med=$(for a in "${ALLOC_NAMES[@]}"; do
        awk -v a="$a" '$1 == a && $2 != "NA" { v[++n] = $2 + 0 }
            END {
                if (n == 0) { printf "%s FAIL  ", a; exit }
                for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
                m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
                printf "%s %.4g  ", a, m
            }' "$TMP/case"
    done)
    if [ -t 2 ]; then printf '\r\033[K' >&2; fi
    printf '%-22s %-14s %s\n' "${C_LAB[$c]}" "[${mets[0]}]" "$med"
done
[ -t 2 ] && printf '\r\033[K' >&2
T_END=$(now)
WALL=$(hms "$(awk -v a="$T_START" -v b="$T_END" 'BEGIN { print b - a }')")
echo
echo "suite finished in $WALL (m:ss), $failures failed run(s)"

# ---- summary --------------------------------------------------------------------
SUMMARY=$OUT/summary.md
{
    echo "# mempool benchmark summary"
    echo
    echo "- Date: $DATE"
    echo "- Machine: $MACHINE"
    echo "- Suite: $([ "$QUICK" = 1 ] && echo "QUICK, ")$NC cases, RUNS=$RUNS interleaved per allocator, SCALE=$SCALE%, THREADS=$THREADS; wall time $WALL; $failures failed run(s)"
    echo "- Allocators:"
    for i in "${!ALLOC_NAMES[@]}"; do
        echo "  - ${ALLOC_NAMES[$i]} $(bench_version "${ALLOC_NAMES[$i]}"): ${ALLOC_SOS[$i]:-no preload}"
    done
    for s in "${BENCH_SKIPPED[@]+"${BENCH_SKIPPED[@]}"}"; do
        echo "  - skipped: $s"
    done
    [ "$REF" != mempool ] && echo "- mempool was not measured: ratios are against $REF."
    echo "- Raw data: results.csv (one row per run and metric); charts: time, rss, scaling (.svg/.png)"
    echo
    awk -v ALLOCS="${ALLOC_NAMES[*]}" -v REF="$REF" -v NORM=glibc -v OUT="$OUT" \
        -f "$ROOT/bench/summary.awk" "$CASES_TSV" "$CSV"
} >"$SUMMARY"
echo
cat "$SUMMARY"

# ---- charts -----------------------------------------------------------------------
make_charts() {
    local terms png_term svg_ok=0 norm=glibc n_alloc ncase width fmt f out
    if ! command -v gnuplot >/dev/null 2>&1; then
        echo "bench: gnuplot not found, no charts (apt-get install gnuplot-nox)"
        return
    fi
    terms=$(gnuplot -e 'set terminal' 2>&1 </dev/null)
    printf '%s\n' "$terms" | grep -qE '^ *svg ' && svg_ok=1
    if printf '%s\n' "$terms" | grep -qE '^ *pngcairo '; then png_term=pngcairo
    elif printf '%s\n' "$terms" | grep -qE '^ *png '; then png_term=png
    else png_term=""; fi
    local have_norm=0
    for a in "${ALLOC_NAMES[@]}"; do [ "$a" = glibc ] && have_norm=1; done
    [ "$have_norm" = 1 ] || norm=${ALLOC_NAMES[0]}
    n_alloc=$NA
    ncase=$NC
    width=$(( 260 + ncase * (NA * 9 + 8) ))
    [ "$width" -ge 900 ] || width=900
    local title_tail="$MACHINE\\n$DATE, $RUNS run(s) per case, medians"
    # One fixed colour per allocator, mempool the strongest.
    local colors="" a
    for a in "${ALLOC_NAMES[@]}"; do
        case $a in
            glibc) colors="$colors #8c8c8c" ;;
            jemalloc) colors="$colors #1f77b4" ;;
            tcmalloc) colors="$colors #2ca02c" ;;
            mimalloc) colors="$colors #9467bd" ;;
            mempool) colors="$colors #d62728" ;;
            *) colors="$colors #ff7f0e" ;;
        esac
    done

    for fmt in svg png; do
        case $fmt in
            svg) [ "$svg_ok" = 1 ] || continue
                 term="set terminal svg size $width,640 dynamic enhanced font 'Helvetica,11' background rgb 'white'" ;;
            png) [ -n "$png_term" ] || continue
                 term="set terminal $png_term size $width,640 font 'Helvetica,10'" ;;
        esac
        gnuplot <<EOF 2>>"$OUT/gnuplot.log"
$term
set output "$OUT/time.$fmt"
set datafile separator "\t"
set datafile missing "?"
set title "Cost per workload relative to $norm ($norm = 1; lower is better; log scale)\n$title_tail" noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set ylabel "time (or 1/throughput) relative to $norm" noenhanced
set xtics rotate by -50 left nomirror noenhanced
set grid ytics
set key outside top center horizontal noenhanced
set bmargin 9
colors = "$colors"
plot for [i=2:$((n_alloc + 1))] "$OUT/time.dat" using i:xtic(1) title columnheader(i) lc rgb word(colors, i - 1)
set output "$OUT/rss.$fmt"
set title "Peak RSS per workload (MiB, log scale; lower is better)\n$title_tail" noenhanced
set ylabel "peak RSS (MiB)"
set logscale y 10
plot for [i=2:$((n_alloc + 1))] "$OUT/rss.dat" using i:xtic(1) title columnheader(i) lc rgb word(colors, i - 1)
EOF
        if [ -s "$OUT/scaling_ranges.txt" ]; then
            local nr rows sh
            nr=$(wc -l <"$OUT/scaling_ranges.txt")
            rows=$(( (nr + 1) / 2 ))
            sh=$(( rows * 360 + 80 ))
            case $fmt in
                svg) term="set terminal svg size 1100,$sh dynamic enhanced font 'Helvetica,11' background rgb 'white'" ;;
                png) term="set terminal $png_term size 1100,$sh font 'Helvetica,10'" ;;
            esac
            {
                echo "$term"
                echo "set output \"$OUT/scaling.$fmt\""
                printf '%s\n' 'set datafile separator "\t"'
                echo 'set datafile missing "?"'
                printf '%s\n' "set multiplot layout $rows,2 title \"tb throughput vs threads (Mops/s, higher is better)\\n$title_tail\" noenhanced"
                echo 'set logscale x 2'
                echo 'unset xlabel'
                echo 'set ylabel "Mops/s"'
                echo 'set yrange [0:*]'
                echo 'set grid'
                echo 'set key below horizontal noenhanced'
                echo "colors = \"$colors\""
                while IFS=$'\t' read -r k rname; do
                    echo "set title \"size range $rname (x: threads)\" noenhanced"
                    echo "plot for [i=2:$((n_alloc + 1))] \"$OUT/scaling_$k.dat\" using 1:i with linespoints lw 2 lc rgb word(colors, i - 1) title columnheader(i)"
                done <"$OUT/scaling_ranges.txt"
                echo 'unset multiplot'
            } | gnuplot 2>>"$OUT/gnuplot.log"
        fi
    done
    out=""
    for f in time rss scaling; do
        for fmt in svg png; do [ -s "$OUT/$f.$fmt" ] && out="$out $f.$fmt"; done
    done
    echo "charts in $OUT:${out:- none (see $OUT/gnuplot.log)}"
}
if [ "${NO_CHARTS:-0}" != 1 ]; then
    : >"$OUT/gnuplot.log"
    make_charts
fi
echo "results: $CSV"
echo "summary: $SUMMARY"
[ "${NO_EXPLICIT:-0}" = 1 ] || explicit_run    # the explicit allocators (issue 6), defined above
