#!/usr/bin/env bash
# `logveil query` latency over the demo's access data scaled up: ingests a generated
# combined-format log of MILLIONS million lines (default 50) spread over 60 days with
# `logveil run --once`, then times a one-day and a 30-day aggregate, each with partition
# pruning (a filter on `dt`) and without it (the same days as a filter on `ts`, which
# DataFusion can only check against row-group statistics, after listing every partition and
# reading every footer). Each query runs RUNS times (default 3); the median wall time is
# printed with the peak RSS, and the same queries through DuckDB (Python package, same glob,
# hive partitioning, a new connection per run; timed inside Python, so without the start of a
# process) when it is installed, for reference.
#
# Usage: benches/query.sh [MILLIONS (default 50)] [RUNS (default 3)]
# Needs /usr/bin/time (Debian package `time`). LOGVEIL_BENCH_DIR keeps input and output
# between runs (the generated log is deleted once ingested; about 14 GB while it exists).
set -euo pipefail
cd "$(dirname "$0")/.."
millions=${1:-50}
runs=${2:-3}
work=${LOGVEIL_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work/in"
trap '[ -z "${LOGVEIL_BENCH_DIR:-}" ] && rm -rf "$work"' EXIT

cargo build --release -q -p logveil
bin=$PWD/target/release/logveil
# The generator starts at 2026-11-27T00:00:00Z; 1440 hours end on 2027-01-26.
export LOGVEIL_NOW=2027-01-26T12:00:00Z
root="$work/raw-${millions}m"
if [ ! -d "$root/access" ]; then
  input="$work/in/access-${millions}m.log"
  echo "generating ${millions} M lines over 60 days..."
  "$bin" generate --kind combined --lines "$((millions * 1000000))" --seed 13 --span-hours 1440 --out "$input"
  cat > "$work/query.toml" <<TOML
[output]
root = "$root"
[keys]
dev_key = true
[datasets.access]
retention_days = 90
[[sources]]
name = "web"
format = "combined"
dataset = "access"
paths = ["$input"]
follow = true
TOML
  echo "ingesting..."
  "$bin" run --once --no-progress "$work/query.toml" 2>/dev/null
  rm -f "$input"
fi
rows=$(python3 - "$root" <<'PY'
import json, pathlib, sys
print(sum(json.loads(p.read_text())["rows"] for p in pathlib.Path(sys.argv[1], "access").glob("dt=*/hour=*/_manifest.json")))
PY
)
parts=$(find "$root/access" -name '*.parquet' | wc -l)
echo "access: $rows rows in $parts files, $(du -sh "$root/access" | cut -f1); machine: $(nproc) cores"

# name|SQL (logveil query and DuckDB alike)
queries=(
  "1 day, pruned (dt)|SELECT path, count(*) AS requests, count(DISTINCT ip_network) AS networks FROM access WHERE dt = DATE '2026-12-15' GROUP BY path ORDER BY requests DESC LIMIT 20"
  "1 day, not pruned (ts)|SELECT path, count(*) AS requests, count(DISTINCT ip_network) AS networks FROM access WHERE ts >= TIMESTAMP '2026-12-15 00:00:00+00' AND ts < TIMESTAMP '2026-12-16 00:00:00+00' GROUP BY path ORDER BY requests DESC LIMIT 20"
  "30 days, pruned (dt)|SELECT dt, count(*) AS requests, count(DISTINCT ip_network) AS networks, avg(bytes_sent) AS bytes FROM access WHERE dt BETWEEN DATE '2026-12-01' AND DATE '2026-12-30' GROUP BY dt ORDER BY dt"
  "30 days, not pruned (ts)|SELECT CAST(ts AS DATE) AS day, count(*) AS requests, count(DISTINCT ip_network) AS networks, avg(bytes_sent) AS bytes FROM access WHERE ts >= TIMESTAMP '2026-12-01 00:00:00+00' AND ts < TIMESTAMP '2026-12-31 00:00:00+00' GROUP BY day ORDER BY day"
)

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

have_duckdb=0
python3 -c 'import duckdb' 2>/dev/null && have_duckdb=1
printf '%-26s %12s %10s %14s\n' query "logveil (s)" "RSS (MB)" "duckdb (s)"
for q in "${queries[@]}"; do
  name=${q%%|*}
  sql=${q#*|}
  : > "$work/times"
  rss=0
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$work/time.raw" "$bin" query --format csv --root "$root" "$sql" > "$work/result.csv" 2>"$work/stderr" \
      || { echo "$name failed:"; cat "$work/stderr"; exit 1; }
    read -r secs kb < "$work/time.raw"
    echo "$secs" >> "$work/times"
    [ "$kb" -gt "$rss" ] && rss=$kb
  done
  t=$(median < "$work/times")
  d="-"
  if [ "$have_duckdb" = 1 ]; then
    d=$(python3 - "$root" "$sql" "$runs" <<'PY'
import statistics, sys, time, duckdb
root, sql, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for _ in range(runs):
    # A new connection each time, like a new `logveil query` process (no cached footers).
    t = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"""CREATE VIEW access AS SELECT * FROM read_parquet('{root}/access/**/*.parquet',
        hive_partitioning = true, hive_types = {{'dt': DATE, 'hour': INTEGER}})""")
    con.execute(sql).fetchall()
    times.append(time.perf_counter() - t)
    con.close()
print(f"{statistics.median(times):.2f}")
PY
)
  fi
  printf '%-26s %12s %10.0f %14s\n' "$name" "$t" "$((rss / 1024))" "$d"
done
