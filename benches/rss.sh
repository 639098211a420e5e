#!/usr/bin/env bash
# Peak memory against input size: `logveil run --once` with a followed source (the daemon's
# path: epochs, journal, exactly once) over a generated combined-format log of SIZE_GB
# gigabytes (default 10), on all cores and on one thread. Prints time, lines/s and peak
# resident memory; memory must not grow with the input (compare with SIZE_GB=1).
#
# Usage: benches/rss.sh [SIZE_GB (default 10)]
# Needs /usr/bin/time (Debian package `time`) and about 1.1 × SIZE_GB of free disk for the
# input plus the Parquet output. LOGVEIL_BENCH_DIR keeps the input between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
gb=${1:-10}
work=${LOGVEIL_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work/in"
trap '[ -z "${LOGVEIL_BENCH_DIR:-}" ] && rm -rf "$work"' EXIT

cargo build --release -q -p logveil
bin=$PWD/target/release/logveil
export LOGVEIL_NOW="${LOGVEIL_NOW:-2026-11-28T12:00:00Z}"
input="$work/in/access-${gb}g.log"
if [ ! -s "$input" ]; then
  # ~230 bytes per generated line; one day of timestamps.
  lines=$(python3 -c "print(int($gb * 1e9 / 232))")
  echo "generating $lines lines ($gb GB)..."
  "$bin" generate --kind combined --lines "$lines" --seed 7 --span-hours 24 --out "$input"
fi
bytes=$(stat -c %s "$input")
lines=$(wc -l < "$input")
echo "input: $lines lines, $(python3 -c "print(round($bytes/1e9, 2))") GB; machine: $(nproc) cores"

runs=1
. benches/measure.sh
measure run_follow_all_cores "$lines" "$bytes" "$bin" run --once --no-progress "$(pipeline 0)"
measure run_follow_1_thread "$lines" "$bytes" "$bin" run --once --no-progress "$(pipeline 1)"
rm -rf "$work/out"
