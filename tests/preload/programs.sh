#!/usr/bin/env bash
# programs.sh LIB NAME - run a real program under LD_PRELOAD=LIB and under
# glibc, and check that (1) the output is the same, (2) mempool really served
# the allocations: MEMPOOL_SHOW_STATS=1 makes it print its counters at exit,
# and they must show the work.  NAME: python3 | sqlite3 | git.
# Exit 0 on success, 77 when the program is not installed.
set -u
lib=$1
name=$2
command -v "$name" >/dev/null 2>&1 || { echo "SKIP: $name not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# shellcheck source=tests/preload/workloads.sh
. "$(dirname "${BASH_SOURCE[0]}")/workloads.sh"
workload_write "$name" "$work/run" || exit 2

(cd "$work" && ./run) >"$work/glibc.out" 2>&1 || { echo "FAIL: $name failed under glibc"; cat "$work/glibc.out"; exit 1; }
(cd "$work" && MEMPOOL_SHOW_STATS=1 LD_PRELOAD="$lib" ./run) >"$work/mp.out" 2>"$work/mp.err" \
    || { echo "FAIL: $name failed under mempool"; tail -20 "$work/mp.out" "$work/mp.err"; exit 1; }
if ! cmp -s "$work/glibc.out" "$work/mp.out"; then
    echo "FAIL: $name output differs from glibc's"
    diff "$work/glibc.out" "$work/mp.out" | head -20
    exit 1
fi
# The stats lines (one per process; git runs many) must show mempool at work.
stats=$(grep '^mempool: stats:' "$work/mp.err")
[ -n "$stats" ] || { echo "FAIL: no 'mempool: stats:' line: mempool did not serve $name"; exit 1; }
refills=$(echo "$stats" | sed -n 's/.* refills=\([0-9]*\).*/\1/p' | sort -n | tail -1)
if [ "${refills:-0}" -lt 100 ]; then
    echo "FAIL: mempool's counters barely moved ($refills refills): did it serve $name?"
    exit 1
fi
echo "ok: $name, same output as glibc, $(echo "$stats" | wc -l) process(es) served, max refills $refills"
