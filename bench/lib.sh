# shellcheck shell=bash
# bench/lib.sh - shared by bench/run.sh and bench/compare.sh (source it).
#
# Finds the comparison allocators' shared objects, installs missing ones when
# allowed, and runs a command under one allocator.  Allocator names:
#   glibc     the C library's malloc (no LD_PRELOAD)
#   jemalloc  libjemalloc.so.2          (Debian/Ubuntu package libjemalloc2)
#   tcmalloc  libtcmalloc_minimal.so.4  (libtcmalloc-minimal4)
#   mimalloc  libmimalloc.so.2          (libmimalloc2.0)
#   mempool   $MEMPOOL_SO, default <build>/libmempool.so
#
# Environment read here:
#   ALLOCATORS   comma/space list to use (default: all five, in that order)
#   MEMPOOL_SO   path of mempool's shared library (default <build>/libmempool.so)
#   NO_INSTALL=1 never run apt-get, only say what is missing
#   RUN_TIMEOUT  seconds one benchmark run may take (default 180)

BENCH_ALL_ALLOCATORS="glibc jemalloc tcmalloc mimalloc mempool"

BENCH_SKIPPED=()

bench_log() { printf '%s\n' "$*" >&2; }

# bench_skip <allocator> <why>: say why an allocator is left out; remembered
# in BENCH_SKIPPED for the report.
bench_skip() {
    BENCH_SKIPPED+=("$1: $2")
    bench_log "bench: SKIP $1: $2"
}

bench_multiarch() {
    local ma=""
    ma=$(gcc -print-multiarch 2>/dev/null) || ma=""
    [ -n "$ma" ] || ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null) || ma=""
    [ -n "$ma" ] || ma="$(uname -m)-linux-gnu"
    printf '%s\n' "$ma"
}

# bench_pkg <allocator>: the Debian package that ships it.
bench_pkg() {
    case "$1" in
        jemalloc) echo libjemalloc2 ;;
        tcmalloc) echo libtcmalloc-minimal4 ;;
        mimalloc) echo libmimalloc2.0 ;;
        *) echo "" ;;
    esac
}

# bench_soname <allocator>: the file names to look for, best first.
bench_sonames() {
    case "$1" in
        jemalloc) echo "libjemalloc.so.2 libjemalloc.so" ;;
        tcmalloc) echo "libtcmalloc_minimal.so.4 libtcmalloc_minimal.so libtcmalloc.so.4" ;;
        mimalloc) echo "libmimalloc.so.2 libmimalloc.so" ;;
        *) echo "" ;;
    esac
}

# bench_find_so <allocator>: print the path of its shared object, or nothing.
bench_find_so() {
    local alloc=$1 ma name dir f pkg
    ma=$(bench_multiarch)
    for name in $(bench_sonames "$alloc"); do
        for dir in "/usr/lib/$ma" "/lib/$ma" /usr/lib64 /usr/lib /usr/local/lib \
                   "/usr/local/lib/$ma" /lib64 /lib; do
            if [ -e "$dir/$name" ]; then
                readlink -f "$dir/$name"
                return 0
            fi
        done
        # The dynamic linker's cache knows libraries in other places.
        f=$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n { print $NF; exit }')
        if [ -n "$f" ] && [ -e "$f" ]; then
            readlink -f "$f"
            return 0
        fi
    done
    # Last resort: ask dpkg where the package put its files.
    pkg=$(bench_pkg "$alloc")
    if [ -n "$pkg" ] && command -v dpkg >/dev/null 2>&1; then
        f=$(dpkg -L "$pkg" 2>/dev/null | grep -E '/lib[^/]*\.so(\.[0-9]+)*$' | head -n 1)
        if [ -n "$f" ] && [ -e "$f" ]; then
            readlink -f "$f"
            return 0
        fi
    fi
    return 1
}

# bench_version <allocator>: a short version string for the report.
bench_version() {
    local pkg v
    case "$1" in
        glibc)
            v=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')
            echo "${v:-?}"
            return ;;
        mempool)
            echo "working tree"
            return ;;
    esac
    pkg=$(bench_pkg "$1")
    v=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) || v=""
    echo "${v:-?}"
}

# bench_preload_ok <so>: does a program start with it preloaded, and is it
# really mapped?  Prints the reason on failure.
bench_preload_ok() {
    local so=$1 out
    out=$(LD_PRELOAD="$so" timeout 20 cat /proc/self/maps 2>&1) || {
        printf 'a program preloaded with it fails: %s\n' "$(printf '%s' "$out" | tail -n 1)"
        return 1
    }
    if printf '%s' "$out" | grep -q 'ERROR: ld.so'; then
        printf '%s\n' "$(printf '%s' "$out" | grep 'ERROR: ld.so' | head -n 1)"
        return 1
    fi
    if ! printf '%s' "$out" | grep -qF "$(readlink -f "$so")"; then
        printf 'it is not mapped into a preloaded process\n'
        return 1
    fi
    return 0
}

# bench_install_missing <allocator...>: install the packages of those that
# are missing (and gnuplot-nox when BENCH_WANT_GNUPLOT=1 and gnuplot is
# missing) when we are root and have apt-get; bench_setup_allocators then
# says how to install whatever is still missing.
bench_install_missing() {
    local a pkgs="" missing=""
    for a in "$@"; do
        case "$a" in jemalloc|tcmalloc|mimalloc) ;; *) continue ;; esac
        if ! bench_find_so "$a" >/dev/null; then
            missing="$missing $a"
            pkgs="$pkgs $(bench_pkg "$a")"
        fi
    done
    if [ "${BENCH_WANT_GNUPLOT:-0}" = 1 ] && ! command -v gnuplot >/dev/null 2>&1; then
        missing="$missing gnuplot"
        pkgs="$pkgs gnuplot-nox"
    fi
    [ -n "$missing" ] || return 0
    if [ "${NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        bench_log "bench: installing$pkgs (missing:$missing)"
        # shellcheck disable=SC2086
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pkgs >&2; then
            bench_log "bench: apt-get install failed; running apt-get update and trying again"
            # shellcheck disable=SC2086
            if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
                   DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pkgs >&2; }; then
                bench_log "bench: could not install$pkgs"
            fi
        fi
    fi
}

# bench_setup_allocators <mempool_so>: fills the arrays ALLOC_NAMES and
# ALLOC_SOS (empty .so for glibc) with the allocators that can be used, and
# says on stderr why any other is skipped.
bench_setup_allocators() {
    local mempool_so=$1 wanted a so why
    wanted=$(printf '%s' "${ALLOCATORS:-$BENCH_ALL_ALLOCATORS}" | tr ',' ' ')
    ALLOC_NAMES=()
    ALLOC_SOS=()
    # shellcheck disable=SC2086
    bench_install_missing $wanted
    for a in $wanted; do
        case "$a" in
            glibc)
                ALLOC_NAMES+=(glibc)
                ALLOC_SOS+=("")
                continue ;;
            jemalloc|tcmalloc|mimalloc)
                if ! so=$(bench_find_so "$a"); then
                    bench_skip "$a" "not installed (install it with: sudo apt-get install $(bench_pkg "$a"))"
                    continue
                fi ;;
            mempool)
                so=$mempool_so
                if [ ! -e "$so" ]; then
                    bench_skip mempool "$so does not exist yet (run 'make' to build it)"
                    continue
                fi ;;
            *)
                bench_skip "$a" "unknown allocator (known: $BENCH_ALL_ALLOCATORS)"
                continue ;;
        esac
        if ! why=$(bench_preload_ok "$so"); then
            bench_skip "$a" "LD_PRELOAD=$so does not work: $why"
            continue
        fi
        ALLOC_NAMES+=("$a")
        ALLOC_SOS+=("$so")
    done
}

# bench_run_under <so> <outfile> <errfile> <cmd...>: run cmd under the
# allocator (empty so = glibc) with a time limit.  Returns cmd's status.
bench_run_under() {
    local so=$1 out=$2 err=$3
    shift 3
    # The subshell keeps bash's own "Aborted (core dumped)" notices (printed
    # when the program dies of a signal) out of the terminal; the program's
    # stderr still goes to errfile.
    if [ -n "$so" ]; then
        ( timeout -k 5 "${RUN_TIMEOUT:-180}" env LD_PRELOAD="$so" "$@" >"$out" 2>"$err"; exit $? ) 2>/dev/null
    else
        ( timeout -k 5 "${RUN_TIMEOUT:-180}" env -u LD_PRELOAD "$@" >"$out" 2>"$err"; exit $? ) 2>/dev/null
    fi
}

# bench_result_line <prog> <outfile>: the program's last result line.
bench_result_line() {
    grep -E "^$1( |\$)" "$2" 2>/dev/null | tail -n 1
}

# bench_get <line> <key>: the value of key=value in a result line.
bench_get() {
    printf '%s\n' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2; exit }'
}

# bench_tb_mops <line>: tb's throughput, from whichever of its printed mops
# (2 decimals) and time_s (3 decimals) carries more digits: slow cases such
# as 8-256K print mops=0.03.
bench_tb_mops() {
    printf '%s\n' "$1" | tr ' ' '\n' | awk -F= '
        { v[$1] = $2 }
        END {
            m = v["mops"] + 0; t = v["time_s"] + 0
            if (t > 0 && (m <= 0 || 0.0005 / t < 0.005 / m))
                printf "%.4g\n", v["threads"] * v["iters"] / t / 1e6
            else
                print v["mops"]
        }'
}

# bench_higher_better <metric>: true for throughput-like metrics.
bench_higher_better() {
    case "$1" in
        mops|*ops_s|*per_s|*_mops) return 0 ;;
        *) return 1 ;;
    esac
}

bench_machine() {
    local model
    model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
    [ -n "$model" ] || model=$(uname -m)
    printf '%s CPUs (nproc), %s, Linux %s\n' "$(nproc 2>/dev/null || echo '?')" "$model" "$(uname -r)"
}
