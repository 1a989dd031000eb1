#!/usr/bin/env bash
# workloads.sh - the real-program workloads, shared by the preload test
# (tests/preload/programs.sh) and the benchmark (bench/programs.sh).
#   workload_write NAME FILE   writes an executable script FILE that runs
#                              program NAME on a fixed, deterministic job
# NAME: python3 | sqlite3 | git.  Returns 2 for an unknown name.

workload_write() {
    local name=$1 file=$2
case $name in
python3)
    cat >"$file" <<'PY'
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
    cat >"$file" <<'SQL'
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
    cat >"$file" <<'GIT'
#!/bin/sh
set -e
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t \
       GIT_COMMITTER_EMAIL=t@example.invalid GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' \
       GIT_COMMITTER_DATE='2026-01-01T00:00:00Z' HOME=$PWD GIT_CONFIG_NOSYSTEM=1
rm -rf repo && git init -q -b main repo && cd repo
for c in $(seq 1 30); do
    # One awk writes the commit's 40 files (201 numbers from c*f each):
    # a seq per file made 1200 processes that timed exec, not git.
    awk -v c="$c" 'BEGIN { for (f = 1; f <= 40; f++) { n = "file" f ".txt"
        for (i = c * f; i <= c * f + 200; i++) print i > n; close(n) } }'
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
*) echo "unknown program $name" >&2; return 2 ;;
esac
    chmod +x "$file"
}
