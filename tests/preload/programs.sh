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

case $name in
python3)
    cat >"$work/run" <<'PY'
#!/bin/sh
exec python3 - <<'EOF2'
import random
random.seed(7)
d = {}
for i in range(400000):
    d["key%d" % i] = [i, str(i) * 3, {"v": i}]
words = ["".join(chr(97 + (i * j) % 26) for j in range(1 + i % 20)) for i in range(300000)]
words.sort()
s = set(words)
total = sum(len(v[1]) for v in d.values())
del d
chunks = [bytearray(random.randrange(1, 5000)) for _ in range(20000)]
print(len(words), len(s), total, sum(len(c) for c in chunks))
EOF2
PY
    ;;
sqlite3)
    cat >"$work/run" <<'SQL'
#!/bin/sh
exec sqlite3 :memory: <<'EOF2'
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000)
INSERT INTO t(id, k, v) SELECT x, printf('k%08d', (x * 7919) % 1000003), x % 977 FROM c;
CREATE INDEX tk ON t(k);
SELECT count(*), sum(v), min(k), max(k) FROM t;
SELECT v, count(*) FROM t GROUP BY v ORDER BY count(*) DESC, v LIMIT 3;
SELECT k FROM t WHERE k BETWEEN 'k00500000' AND 'k00500100' ORDER BY k LIMIT 5;
EOF2
SQL
    ;;
git)
    cat >"$work/run" <<'GIT'
#!/bin/sh
set -e
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t \
       GIT_COMMITTER_EMAIL=t@example.invalid GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' \
       GIT_COMMITTER_DATE='2026-01-01T00:00:00Z' HOME=$PWD GIT_CONFIG_NOSYSTEM=1
rm -rf repo && git init -q -b main repo && cd repo
for c in $(seq 1 30); do
    for f in $(seq 1 40); do
        seq $((c * f)) $((c * f + 200)) > "file$f.txt"
    done
    git add -A && git commit -q -m "commit $c"
done
git log --oneline | head -3
git log --stat | wc -l
git diff HEAD~10 --stat | tail -1
git gc -q
git fsck --no-progress --strict >/dev/null 2>&1 && echo fsck ok
git rev-parse HEAD
GIT
    ;;
*) echo "unknown program $name"; exit 2 ;;
esac
chmod +x "$work/run"

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
