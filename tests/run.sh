#!/bin/bash
# run.sh <builddir> - run every test program built under <builddir>/tests.
#
# One result per program run:
#   unit/X                 <builddir>/tests/unit/X (the library's layers)
#   api/X                  the API test linked with libmempool.a
#   api/X.plain            the same test built without mempool, on glibc
#   api/X.plain+preload    that build under LD_PRELOAD=<builddir>/libmempool.so
#   misuse/X               must die of SIGABRT (status 134) with the line of
#                          tests/misuse/X.expect on stderr (ADDR stands for
#                          the address, which must be the one the program
#                          announced with "misuse: address 0x...")
#   stress/<set>           tests/stress/stress.c with a few parameter sets
#   fuzz/X                 tests/fuzz/X.c on its corpus and seeded inputs
#   preload/X              under LD_PRELOAD with MEMPOOL_SHOW_STATS=1: must
#                          succeed and print a "mempool: stats:" line
#                          (dlopen_X: run without LD_PRELOAD, given the .so)
#   preload/programs:P     tests/preload/programs.sh <so> P for python3,
#                          sqlite3 and git (skipped if not installed)
#   static/X               linked with libmempool.a, MEMPOOL_SHOW_STATS=1:
#                          must succeed and print a "mempool: stats:" line
#                          (setuid_ignores_options: MEMPOOL_* ignored when
#                          set-user-ID; needs root)
#   fastpath               tests/fastpath/count.sh (needs valgrind)
# Every run is under `timeout` (MP_TEST_TIMEOUT seconds, default 120; the
# fast-path count gets MP_FASTPATH_TIMEOUT, default 300).
#
# With MP_SANITIZER=asan or tsan (the library then keeps the sanitizer's
# malloc) the LD_PRELOAD runs, the preload programs, the misuse programs that
# go through the malloc family (misuse/libc_*) and the fast-path count are
# skipped, and the stress runs are shortened.
#
# Prints "PASS name", "FAIL name: reason" (with the tail of the output) or
# "SKIP name: reason" per run, then "N passed, N failed[, N skipped]".
# Exit status 0 iff nothing failed.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: bash tests/run.sh <builddir>" >&2
    exit 2
fi
tests_dir=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
so=$build/libmempool.so
tmo=${MP_TEST_TIMEOUT:-120}
fp_tmo=${MP_FASTPATH_TIMEOUT:-300}
san=${MP_SANITIZER:-}
case "$san" in
    "" | asan | tsan) ;;
    *) echo "run.sh: MP_SANITIZER must be asan or tsan, not '$san'" >&2; exit 2 ;;
esac

if [ -n "$san" ]; then
    # impossible sizes must return NULL (as the tests expect), not abort
    export ASAN_OPTIONS="allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export TSAN_OPTIONS="allocator_may_return_null=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
fi
# no core files from the misuse programs (and no "dumped core" notes)
ulimit -c 0 2>/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/mempool-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT

npass=0
nfail=0
nskip=0

# Output of the last run_prog: $work/out, $work/err; status in $rc; time in $secs.
rc=0
secs=0
run_prog() {
    local limit=$1
    shift
    local t0 t1
    t0=$(date +%s.%N)
    # (the braces keep bash's "Aborted" job notices out of the report)
    { timeout -k 10 "$limit" "$@" >"$work/out" 2>"$work/err" </dev/null; } 2>/dev/null
    rc=$?
    t1=$(date +%s.%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}

# The tail of the last run's output, indented.
show_tail() {
    {
        if [ -s "$work/out" ]; then
            echo "--- stdout (last lines):"
            tail -n 25 "$work/out"
        fi
        if [ -s "$work/err" ]; then
            echo "--- stderr (last lines):"
            tail -n 15 "$work/err"
        fi
    } | sed 's/^/    /'
}

# describe_status <status> <timeout>: in words, with mempool's report (a
# "mempool: ..." line on stderr) when there is one.
describe_status() {
    local report=""
    if [ "$1" -ne 0 ] && [ -s "$work/err" ]; then
        report=$(grep -E '^mempool: ' "$work/err" | grep -v '^mempool: stats:' | head -n 1)
        # a sanitizer's verdict (TSAN exits 66 after a report)
        [ -n "$report" ] ||
            report=$(grep -E '^ *SUMMARY: [A-Za-z]+Sanitizer' "$work/err" | sed 's/^ *//' |
                     sort | uniq -c | sed 's/^ *//' | head -n 3 | tr '\n' ';' | sed 's/;$//')
    fi
    describe_status_1 "$@"
    [ -z "$report" ] || printf ' [%s]' "$report"
    echo
}

describe_status_1() {
    case $1 in
        0) printf 'exit 0' ;;
        124 | 137) printf 'timed out after %s s (deadlock or hang?)' "$2" ;;
        134) printf 'aborted (SIGABRT)' ;;
        139) printf 'segmentation fault (SIGSEGV)' ;;
        13[0-9] | 14[0-9] | 15[0-9]) printf 'killed by signal %d' $(($1 - 128)) ;;
        *) printf 'exit status %s' "$1" ;;
    esac
}

pass() {
    npass=$((npass + 1))
    echo "PASS $1${2:+ ($2)}"
}

fail() {
    nfail=$((nfail + 1))
    echo "FAIL $1: $2"
    show_tail
}

skip() {
    nskip=$((nskip + 1))
    echo "SKIP $1: $2"
}

# The harness's own summary line ("N passed, N failed[, N skipped]").
summary_of() {
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/out" | tail -n 1
}

# check_harness_run <name>: pass iff exit 0 and the harness summary says so.
# The program just run with MEMPOOL_SHOW_STATS=1 ($2: how it got mempool)
# must have succeeded and printed mempool's "mempool: stats:" line at exit.
check_served() {
    if [ $rc -ne 0 ]; then
        fail "$1" "$(describe_status $rc "$tmo") $2"
    elif ! grep -q '^mempool: stats:' "$work/err"; then
        fail "$1" "no 'mempool: stats:' line on stderr: mempool did not serve the program $2"
    else
        pass "$1" "${secs}s"
    fi
}

check_harness_run() {
    local name=$1 sum
    sum=$(summary_of)
    if [ $rc -ne 0 ]; then
        local failed_cases
        failed_cases=$(grep -E '^FAIL - ' "$work/out" | sed 's/^FAIL - //; s/:.*//' | head -n 8 | tr '\n' ' ')
        fail "$name" "$(describe_status $rc "$tmo")${sum:+; $sum}${failed_cases:+; failed: $failed_cases}"
    elif [ -z "$sum" ]; then
        fail "$name" "exit 0 but no 'N passed, N failed' line"
    elif printf '%s' "$sum" | grep -q -E '^0 passed, 0 failed$'; then
        fail "$name" "ran no test ($sum)"
    else
        pass "$name" "$sum; ${secs}s"
    fi
}

is_prog() {
    [ -f "$1" ] && [ -x "$1" ]
}

# prog_for <dir> <source>: set x, prog and name for tests/<dir>/X.c; a FAIL
# and false when the program was not built.
prog_for() {
    x=$(basename "$2" .c)
    prog=$build/tests/$1/$x
    name=$1/$x
    is_prog "$prog" || { fail "$name" "$prog was not built"; return 1; }
}

# ready <name> <prog> <what>: false, after a SKIP under a sanitizer (<what>
# need mempool's own malloc) or a FAIL when <prog> was not built.
ready() {
    if [ -n "$san" ]; then
        skip "$1" "$3 are skipped under MP_SANITIZER=$san"
        return 1
    fi
    is_prog "$2" || { fail "$1" "$2 was not built"; return 1; }
}

# ---- unit tests -----------------------------------------------------------
# Programs are found from their sources, so that one that failed to build
# fails here instead of being silently left out.
for src in "$tests_dir"/unit/*.c; do
    [ -e "$src" ] || continue
    prog_for unit "$src" || continue
    run_prog "$tmo" "$prog"
    check_harness_run "$name"
done

# ---- API tests: static, plain glibc, plain under LD_PRELOAD ----------------
for src in "$tests_dir"/api/*.c; do
    [ -e "$src" ] || continue
    prog_for api "$src" || continue
    base=$name

    run_prog "$tmo" "$prog"
    check_harness_run "$base"

    if ! is_prog "$prog.plain"; then
        fail "$base.plain" "$prog.plain was not built"
        continue
    fi
    run_prog "$tmo" "$prog.plain"
    check_harness_run "$base.plain"

    if [ -n "$san" ]; then
        skip "$base.plain+preload" "LD_PRELOAD runs are skipped under MP_SANITIZER=$san"
    elif [ ! -e "$so" ]; then
        fail "$base.plain+preload" "$so is missing"
    else
        run_prog "$tmo" env LD_PRELOAD="$so" MP_TEST_EXPECT_MEMPOOL=1 "$prog.plain"
        check_harness_run "$base.plain+preload"
    fi
done

# ---- misuse programs: SIGABRT and the exact report -------------------------
for src in "$tests_dir"/misuse/*.c; do
    [ -e "$src" ] || continue
    x=$(basename "$src" .c)
    prog=$build/tests/misuse/$x
    name=misuse/$x
    case "$x" in
        libc_*)
            if [ -n "$san" ]; then
                skip "$name" "goes through the malloc family, which is the sanitizer's under MP_SANITIZER=$san"
                continue
            fi
            ;;
    esac
    expect_file=$tests_dir/misuse/$x.expect
    if [ ! -r "$expect_file" ]; then
        fail "$name" "no $expect_file"
        continue
    fi
    expect=$(head -n 1 "$expect_file")
    if ! is_prog "$prog"; then
        fail "$name" "$prog was not built"
        continue
    fi
    run_prog "$tmo" "$prog"
    if [ $rc -eq 0 ]; then
        fail "$name" "exit 0: the bug was not detected (expected: $expect)"
        continue
    fi
    if [ $rc -ne 134 ]; then
        fail "$name" "$(describe_status $rc "$tmo"), expected SIGABRT (status 134) with: $expect"
        continue
    fi
    # The expected line with ADDR as the only pattern; everything else literal.
    regex=$(printf '%s' "$expect" | sed -e 's/[]\/$*.^[]/\\&/g' -e 's/ADDR/(0x[0-9a-f]+)/')
    line=$(grep -E -x -- "$regex" "$work/err" | head -n 1)
    if [ -z "$line" ]; then
        fail "$name" "aborted, but stderr lacks the line: $expect"
        continue
    fi
    got=$(printf '%s\n' "$line" | grep -o -E '0x[0-9a-f]+' | tail -n 1)
    announced=$(sed -n 's/^misuse: address \(0x[0-9a-f]*\)$/\1/p' "$work/err" | head -n 1)
    if [ -z "$announced" ]; then
        fail "$name" "the program did not announce its bad pointer (misuse: address 0x...)"
        continue
    fi
    if [ $((got)) -ne $((announced)) ]; then
        fail "$name" "reported address $got, but the bad pointer was $announced"
        continue
    fi
    pass "$name" "${secs}s"
done

# ---- stress -------------------------------------------------------------------
stress=$build/tests/stress/stress
if is_prog "$stress"; then
    # ops per thread; a tenth under the sanitizers
    div=1
    [ -n "$san" ] && div=10
    while read -r sname sargs; do
        [ -n "$sname" ] || continue
        set -- $sargs
        args=()
        envs=()
        while [ $# -gt 0 ]; do
            if [[ "$1" == MEMPOOL_*=* ]]; then
                envs+=("$1")
                shift
            elif [ "$1" = "--ops" ]; then
                args+=(--ops $(($2 / div)))
                shift 2
            else
                args+=("$1")
                shift
            fi
        done
        run_prog "$tmo" env "${envs[@]}" "$stress" "${args[@]}"
        line=$(grep '^stress:' "$work/out" | tail -n 1)
        if [ $rc -eq 0 ]; then
            pass "stress/$sname" "$(printf '%s' "$line" | sed 's/^stress: //')"
        else
            fail "stress/$sname" "$(describe_status $rc "$tmo")${line:+: $line}"
        fi
    done <<'EOF'
local8     --mode local --threads 8 --ops 1000000 --min 1 --max 512 --seed 1
local4-big --mode local --threads 4 --ops 200000 --min 256 --max 40000 --slots 300 --seed 2
handoff    --mode handoff --producers 4 --consumers 4 --ops 400000 --min 16 --max 4096 --max-mb 128 --seed 3
handoff1x3 --mode handoff --producers 1 --consumers 3 --ops 1000000 --min 1 --max 1024 --max-mb 64 --seed 4
mixed      --mode mixed --threads 4 --ops 150000 --seed 5
odd-options MEMPOOL_CHUNK=300k MEMPOOL_ARENAS=3 MEMPOOL_RETAIN=100k MEMPOOL_DECAY_MS=0 MEMPOOL_TCACHE_MAX=70000 --mode local --threads 4 --ops 20000 --min 1 --max 600000 --slots 200 --seed 6
EOF
else
    for sname in local8 local4-big handoff handoff1x3 mixed odd-options; do
        fail "stress/$sname" "$stress was not built"
    done
fi

# ---- fuzz targets --------------------------------------------------------------
# tests/fuzz/X.c through tests/fuzz/driver.c: the committed corpus
# (tests/fuzz/X.corpus, what libFuzzer found in `make fuzz`), then seeded
# random inputs (a fifth under the sanitizers).  A generated input that fails
# is kept as <builddir>/X.failure, to replay with the program (with the
# same environment).  Each target runs twice: with the default options, and
# as X:eager with pages released at once and a 4 MiB floor on the address
# space kept, so that the inputs also run over memory the page heap has
# decommitted and over ranges it has unmapped and mapped again, and as
# X:huge, the same with huge pages from the second chunk on (where the
# kernel has them), where releases and unmaps take whole huge pages and
# leave spans with dirty ends around a zero run.
for src in "$tests_dir"/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    prog_for fuzz "$src" || continue
    corpus=()
    [ -e "$tests_dir/fuzz/$x.corpus" ] && corpus=("$tests_dir/fuzz/$x.corpus")
    runs=2000
    [ -n "$san" ] && runs=400
    base=$name
    for variant in default eager huge; do
        envs=(FUZZ_FAILURE="$work/$x.failure")
        name=$base
        n=$runs
        if [ $variant != default ]; then  # a madvise per free: a fifth of the inputs
            envs+=(MEMPOOL_DECAY_MS=0 MEMPOOL_RETAIN=0 MEMPOOL_CHUNK=256k)
            [ $variant = huge ] && envs+=(MEMPOOL_HUGEPAGES=1)
            name=$base:$variant
            n=$((runs / 5))
        fi
        rm -f "$work/$x.failure"
        run_prog "$tmo" env "${envs[@]}" "$prog" --runs $n --seed 1 "${corpus[@]}"
        if [ $rc -ne 0 ] && [ -s "$work/$x.failure" ]; then
            cp "$work/$x.failure" "$build/$x.failure"
            fail "$name" "$(describe_status $rc "$tmo"); replay: ${envs[*]:1} $prog $build/$x.failure"
        else
            check_harness_run "$name"
        fi
    done
done

# ---- preload programs ---------------------------------------------------------
# Each program built from tests/preload/*.c|*.cc runs under LD_PRELOAD with
# MEMPOOL_SHOW_STATS=1, except dlopen_* ones, which load the library
# themselves (argv[1]) and run without LD_PRELOAD.  Then the real programs of
# tests/preload/programs.sh (exit 77 there: not installed, skipped).
for src in "$tests_dir"/preload/*.c "$tests_dir"/preload/*.cc; do
    [ -e "$src" ] || continue
    x=$(basename "$src")
    x=${x%.c}
    x=${x%.cc}
    prog=$build/tests/preload/$x
    name=preload/$x
    ready "$name" "$prog" "preload programs" || continue
    if [ ! -e "$so" ]; then
        fail "$name" "$so is missing"
        continue
    fi
    case "$x" in
        dlopen_*)
            run_prog "$tmo" "$prog" "$so"
            if [ $rc -ne 0 ]; then
                fail "$name" "$(describe_status $rc "$tmo") (dlopen of $so)"
            else
                pass "$name" "${secs}s"
            fi
            continue
            ;;
    esac
    run_prog "$tmo" env LD_PRELOAD="$so" MEMPOOL_SHOW_STATS=1 "$prog"
    check_served "$name" "under LD_PRELOAD"
done
if [ -r "$tests_dir/preload/programs.sh" ]; then
    for pname in python3 sqlite3 git; do
        name=preload/programs:$pname
        if [ -n "$san" ]; then
            skip "$name" "preload programs are skipped under MP_SANITIZER=$san"
            continue
        fi
        run_prog "$tmo" bash "$tests_dir/preload/programs.sh" "$so" "$pname"
        case $rc in
            0) pass "$name" "$(tail -n 1 "$work/out" | sed 's/^ok: //'); ${secs}s" ;;
            77) skip "$name" "$pname is not installed" ;;
            *) fail "$name" "$(describe_status $rc "$tmo"): $(grep -m 1 '^FAIL' "$work/out")" ;;
        esac
    done
fi

# ---- static linking -------------------------------------------------------------
# Programs linked with libmempool.a (tests/static/, see the Makefile): each
# must succeed with MEMPOOL_SHOW_STATS=1 and print a "mempool: stats:" line.
for x in family cxx_new_handler cxx_new_handler_full; do
    prog=$build/tests/static/$x
    name=static/$x
    ready "$name" "$prog" "static drop-in programs" || continue
    run_prog "$tmo" env MEMPOOL_SHOW_STATS=1 "$prog"
    check_served "$name" "linked with libmempool.a"
done

# A set-user-ID program ignores MEMPOOL_* (its caller controls the
# environment): the fully static program made set-user-ID root, run as
# nobody, must print no "mempool: option" line with MEMPOOL_VERBOSE=1, which
# it prints when run plainly.  Needs root, setpriv and a suid mount.
name=static/setuid_ignores_options
prog=$build/tests/static/cxx_new_handler_full
if ! ready "$name" "$prog" "static drop-in programs"; then
    :
elif [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null 2>&1; then
    skip "$name" "needs root and setpriv"
elif findmnt -no OPTIONS -T "$build" 2>/dev/null | grep -qw nosuid; then
    skip "$name" "$build is on a nosuid file system"
else
    sdir=$(mktemp -d "$build/setuid.XXXXXX")
    chmod 755 "$sdir"
    cp "$prog" "$sdir/p" && chmod 4755 "$sdir/p"
    run_prog "$tmo" env MEMPOOL_VERBOSE=1 "$sdir/p"
    plain=$(grep -c '^mempool: option' "$work/err")
    run_prog "$tmo" env MEMPOOL_VERBOSE=1 setpriv --reuid=65534 --regid=65534 --clear-groups "$sdir/p"
    suid=$(grep -c '^mempool: option' "$work/err")
    rm -rf "$sdir"
    if [ $rc -ne 0 ]; then
        fail "$name" "$(describe_status $rc "$tmo") as set-user-ID"
    elif [ "$plain" = 0 ]; then
        fail "$name" "MEMPOOL_VERBOSE=1 printed no option line even run plainly"
    elif [ "$suid" != 0 ]; then
        fail "$name" "$suid option lines printed as set-user-ID (plainly: $plain)"
    else
        pass "$name" "plainly $plain option lines, as set-user-ID none"
    fi
fi

# ---- fast-path instruction counts -----------------------------------------------
if [ -n "$san" ]; then
    skip fastpath "skipped under MP_SANITIZER=$san"
elif ! command -v valgrind >/dev/null 2>&1; then
    skip fastpath "valgrind is not installed (the instruction counts need callgrind)"
elif ! is_prog "$build/tests/fastpath_loop"; then
    fail fastpath "$build/tests/fastpath_loop was not built"
else
    run_prog "$fp_tmo" bash "$tests_dir/fastpath/count.sh" "$build"
    figures=$(grep -E '^  (single|batch)' "$work/out" | sed 's/^ *//; s/ *limit.*//; s/  */ /g' | tr '\n' ',' | sed 's/,$//; s/,/, /g')
    case $rc in
        0) pass fastpath "$figures; ${secs}s" ;;
        77) skip fastpath "count.sh could not run: $(tail -n 1 "$work/err")" ;;
        *)
            fail fastpath "$(describe_status $rc "$fp_tmo")${figures:+: $figures}"
            ;;
    esac
fi

if [ $((npass + nfail)) -eq 0 ]; then
    fail "run.sh" "no test was run: are the sources under $tests_dir?"
fi
if [ $nskip -gt 0 ]; then
    echo "$npass passed, $nfail failed, $nskip skipped"
else
    echo "$npass passed, $nfail failed"
fi
[ $nfail -eq 0 ]
