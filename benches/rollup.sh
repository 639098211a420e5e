#!/usr/bin/env bash
# Rollup build time per million raw rows: ingests a generated combined-format log of
# MILLIONS million lines (default 5, one day of timestamps) with `logveil run --once`, then
# times `logveil rollup --rebuild` for a daily and an hourly rollup of the access dataset
# (six group-by columns, distinct subjects and networks, request-time quantiles), one rollup
# at a time, with one thread and with all cores. Prints seconds, raw rows/s, seconds per
# million raw rows and peak RSS.
#
# Usage: benches/rollup.sh [MILLIONS (default 5)]
# Needs /usr/bin/time (Debian package `time`). LOGVEIL_BENCH_DIR keeps input and raw output
# between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
millions=${1:-5}
work=${LOGVEIL_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work/in"
trap '[ -z "${LOGVEIL_BENCH_DIR:-}" ] && rm -rf "$work"' EXIT

cargo build --release -q -p logveil
bin=$PWD/target/release/logveil
export LOGVEIL_NOW="${LOGVEIL_NOW:-2026-11-28T12:00:00Z}"
input="$work/in/access-${millions}m.log"
if [ ! -s "$input" ]; then
  echo "generating ${millions} M lines..."
  "$bin" generate --kind combined --lines "$((millions * 1000000))" --seed 11 --span-hours 24 --out "$input"
fi
lines=$(wc -l < "$input")
root="$work/raw-${millions}m"
cat > "$work/rollup.toml" <<TOML
[output]
root = "$root"
[keys]
dev_key = true
[[sources]]
name = "web"
format = "combined"
dataset = "access"
paths = ["$input"]
follow = true
[rollups.daily]
dataset = "access"
window = "day"
group_by = ["path", "status_class", "browser_family", "os_family", "device_class", "ip_family"]
subject = "ip_pseudonym"
distinct = ["ip_network"]
quantiles = "request_time_us"
[rollups.hourly]
dataset = "access"
window = "hour"
group_by = ["path", "status_class", "browser_family", "os_family", "device_class", "ip_family"]
subject = "ip_pseudonym"
distinct = ["ip_network"]
quantiles = "request_time_us"
TOML
if [ ! -d "$root/access" ]; then
  echo "ingesting..."
  "$bin" run --once --no-progress "$work/rollup.toml" 2>/dev/null
fi
rows=$(python3 - "$root" <<'PY'
import json, pathlib, sys
print(sum(json.loads(p.read_text())["rows"] for p in pathlib.Path(sys.argv[1], "access").glob("dt=*/hour=*/_manifest.json")))
PY
)
echo "raw rows: $rows (from $lines lines); machine: $(nproc) cores"
for r in daily hourly; do
  for j in 1 "$(nproc)"; do
    /usr/bin/time -f "%e %M" -o "$work/time.raw" "$bin" rollup --rebuild --only "$r" -j "$j" --json "$work/rollup.toml" > "$work/report.$r"
    read -r secs kb < "$work/time.raw"
    python3 -c "
s=$secs; n=$rows
print(f'rollup {\"$r\":<7} -j$j {s:7.2f} s  {n/s/1e6:6.2f} M raw rows/s  {s/(n/1e6):6.3f} s per M rows  max RSS {$kb/1024:5.0f} MB')"
  done
done
