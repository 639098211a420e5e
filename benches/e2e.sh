#!/usr/bin/env bash
# End-to-end benchmark: N million generated combined-format lines through `logveil ingest`
# (one thread, then all cores) into zstd Parquet, and — when the `duckdb` Python package is
# importable — DuckDB doing the same job on the same input in the same run:
# read_csv split on spaces → keyed hash of the client (md5 of key||ip; DuckDB has no keyed
# BLAKE3) and /24 network → COPY … (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (dt, hour)).
#
# Then the same for JSON session events (logveil only), and each other format's fixture
# repeated to as many lines (syslog, logfmt, json, squid, proxy-json, a custom nginx layout).
#
# Usage: benches/e2e.sh [MILLION_LINES (default 2)] [RUNS (default 3)]
# Prints seconds, lines/s, MB/s and peak resident memory per variant (best of RUNS) and the
# logveil/DuckDB ratios. Needs /usr/bin/time (Debian package `time`).
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
# The generator's events are of 27 November 2026: judge retention as of the next day, so
# that no run, whenever it happens, drops them as expired (and measures nothing).
export LOGVEIL_NOW="${LOGVEIL_NOW:-2026-11-28T12:00:00Z}"
input="$work/access.log"
if [ ! -s "$input" ]; then
  "$bin" generate --kind combined --lines "$lines" --seed 1 --span-hours 24 --out "$input"
fi
bytes=$(stat -c %s "$input")
echo "input: $lines lines, $(python3 -c "print(round($bytes/1e6, 1))") MB ($input)"
echo "machine: $(nproc) cores, $(uname -m)"

. benches/measure.sh

measure logveil_1_thread "$lines" "$bytes" "$bin" ingest --format combined --dev-key --no-progress --threads 1 --out "$work/out" "$input"
measure logveil_all_cores "$lines" "$bytes" "$bin" ingest --format combined --dev-key --no-progress --threads 0 --out "$work/out" "$input"

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
  measure duckdb_1_thread "$lines" "$bytes" python3 "$work/duck.py" "$input" "$work/out" 1
  measure duckdb_all_cores "$lines" "$bytes" python3 "$work/duck.py" "$input" "$work/out" "$(nproc)"
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

# Session events (JSON lines): half as many events, logveil only (no DuckDB plan here).
events=$((lines / 2))
sessions="$work/session.jsonl"
if [ ! -s "$sessions" ]; then
  "$bin" generate --kind session --lines "$events" --seed 1 --span-hours 24 --out "$sessions"
fi
sbytes=$(stat -c %s "$sessions")
echo "session input: $events events, $(python3 -c "print(round($sbytes/1e6, 1))") MB"
measure logveil_session_1_thread "$events" "$sbytes" "$bin" ingest --format session-json --dev-key --no-progress --threads 1 --out "$work/out" "$sessions"
measure logveil_session_all_cores "$events" "$sbytes" "$bin" ingest --format session-json --dev-key --no-progress --threads 0 --out "$work/out" "$sessions"

# The other formats: each shipped fixture repeated to about as many lines as the session run
# (fixtures/make_formats.py; canaries and bad lines included), logveil on one thread.
# Set LOGVEIL_BENCH_FORMATS=0 to skip.
if [ "${LOGVEIL_BENCH_FORMATS:-1}" != 0 ]; then
  nginx_format=$(cat fixtures/nginx_timed.format)
  for spec in "syslog syslog.log" "logfmt app.logfmt" "json app.jsonl" "squid squid.log" \
              "proxy-json proxy.jsonl" "custom nginx_timed.log"; do
    set -- $spec
    fmt=$1 fixture=fixtures/$2
    rep="$work/rep.$2"
    if [ ! -s "$rep" ]; then
      per=$(wc -l < "$fixture")
      for _ in $(seq $((events / per))); do cat "$fixture"; done > "$rep"
    fi
    n=$(wc -l < "$rep") size=$(stat -c %s "$rep")
    if [ "$fmt" = custom ]; then
      args=(--log-format "$nginx_format")
    elif [ "$fmt" = json ]; then
      args=(--format json --map ip=client.ip --map device_id=client.device_id --map path=http.path)
    else
      args=(--format "$fmt")
    fi
    measure "logveil_${fmt}_1_thread" "$n" "$size" "$bin" ingest "${args[@]}" --dev-key --no-progress --threads 1 --out "$work/out" "$rep"
  done
fi
