#!/usr/bin/env bash
# End-to-end benchmark: N million generated combined-format lines through `logveil ingest`
# (one thread, then all cores) into zstd Parquet, and — when the `duckdb` Python package is
# importable — DuckDB doing the same job on the same input in the same run:
# read_csv split on spaces → keyed hash of the client (md5 of key||ip; DuckDB has no keyed
# BLAKE3) and /24 network → COPY … (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (dt, hour)).
#
# Usage: benches/e2e.sh [MILLION_LINES (default 2)] [RUNS (default 3)]
# Prints lines/s and MB/s per variant (best of RUNS) and the logveil/DuckDB ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
millions=${1:-2}
runs=${2:-3}
lines=$((millions * 1000000))
work=${LOGVEIL_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"
trap '[ -z "${LOGVEIL_BENCH_DIR:-}" ] && rm -rf "$work"' EXIT

cargo build --release -q -p logveil
bin=target/release/logveil
input="$work/access.log"
if [ ! -s "$input" ]; then
  "$bin" generate --kind combined --lines "$lines" --seed 1 --span-hours 24 --out "$input"
fi
bytes=$(stat -c %s "$input")
mb=$(python3 -c "print($bytes/1e6)")
echo "input: $lines lines, $mb MB ($input)"
echo "machine: $(nproc) cores, $(uname -m)"

best() { sort -g | head -1; }
measure() { # name, command...
  local name=$1; shift
  local times=()
  for _ in $(seq "$runs"); do
    rm -rf "$work/out"
    local t0 t1
    t0=$(date +%s.%N)
    if ! "$@" >/dev/null 2>"$work/stderr.$name"; then
      echo "$name failed:"; cat "$work/stderr.$name"; exit 1
    fi
    t1=$(date +%s.%N)
    times+=("$(python3 -c "print($t1-$t0)")")
  done
  local b
  b=$(printf '%s\n' "${times[@]}" | best)
  python3 -c "
s=$b; print(f'{\"$name\":<28} {s:7.2f} s  {$lines/s/1e6:6.3f} M lines/s  {$mb/s:7.1f} MB/s')"
  echo "$b" > "$work/time.$name"
}

measure logveil_1_thread "$bin" ingest --format combined --dev-key --no-progress --threads 1 --out "$work/out" "$input"
measure logveil_all_cores "$bin" ingest --format combined --dev-key --no-progress --threads 0 --out "$work/out" "$input"

if python3 -c 'import duckdb' 2>/dev/null; then
  cat > "$work/duck.py" <<'PY'
import duckdb, sys
inp, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
con.execute("SET preserve_insertion_order = false")
con.execute(f"""
COPY (
  WITH raw AS (
    SELECT line FROM read_csv('{inp}', columns = {{'line': 'VARCHAR'}}, delim = '\x01', header = false, quote = '', escape = '', auto_detect = false, ignore_errors = true, strict_mode = false)
  ), f AS (
    SELECT split_part(line, ' ', 1) AS ip,
           try_strptime(split_part(split_part(line, '[', 2), ']', 1), '%d/%b/%Y:%H:%M:%S %z') AS ts,
           split_part(line, '"', 2) AS req,
           split_part(line, '"', 3) AS st,
           split_part(line, '"', 4) AS referrer,
           split_part(line, '"', 6) AS ua
    FROM raw
  )
  SELECT ts,
         md5('secret-key' || ip) AS ip_pseudonym,
         CASE WHEN contains(ip, ':') THEN ip ELSE regexp_replace(ip, '\\.[0-9]+$', '.0') || '/24' END AS ip_network,
         split_part(req, ' ', 1) AS method,
         split_part(split_part(req, ' ', 2), '?', 1) AS path,
         split_part(req, ' ', 3) AS protocol,
         TRY_CAST(split_part(trim(st), ' ', 1) AS USMALLINT) AS status,
         TRY_CAST(split_part(trim(st), ' ', 2) AS UBIGINT) AS bytes_sent,
         split_part(referrer, '/', 3) AS referrer_host,
         ua,
         strftime(ts, '%Y-%m-%d') AS dt, hour(ts) AS hour
  FROM f
  WHERE ts IS NOT NULL AND split_part(req, ' ', 1) <> 'CONNECT' AND NOT contains(split_part(req, ' ', 2), '://')
) TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (dt, hour), OVERWRITE_OR_IGNORE)
""")
PY
  measure duckdb_1_thread python3 "$work/duck.py" "$input" "$work/out" 1
  measure duckdb_all_cores python3 "$work/duck.py" "$input" "$work/out" "$(nproc)"
  python3 - "$work" <<'PY'
import sys
w = sys.argv[1]
t = lambda n: float(open(f"{w}/time.{n}").read())
print(f"ratio logveil/duckdb, 1 thread:  {t('duckdb_1_thread')/t('logveil_1_thread'):.2f}x")
print(f"ratio logveil/duckdb, all cores: {t('duckdb_all_cores')/t('logveil_all_cores'):.2f}x")
PY
else
  echo "duckdb (Python) not importable: skipping the DuckDB comparison (pip install duckdb)"
fi
