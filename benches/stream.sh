#!/usr/bin/env bash
# Followed sources against a one-off import: N million generated combined-format lines read
# by `logveil run --once` with a `follow = true` source (commits every 5 s through the
# source's journal, exactly once) and by `logveil ingest` on the same file, on one thread and
# on all cores. Prints seconds, lines/s and peak resident memory (best of RUNS) and the
# run/ingest ratios.
#
# Usage: benches/stream.sh [MILLION_LINES (default 2)] [RUNS (default 3)]
# Needs /usr/bin/time (Debian package `time`). LOGVEIL_BENCH_DIR keeps the input.
set -euo pipefail
cd "$(dirname "$0")/.."
millions=${1:-2}
runs=${2:-3}
lines=$((millions * 1000000))
work=${LOGVEIL_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work/in"
trap '[ -z "${LOGVEIL_BENCH_DIR:-}" ] && rm -rf "$work"' EXIT

cargo build --release -q -p logveil
bin=$PWD/target/release/logveil
# The generator's events are of 27 November 2026: judge retention as of the next day.
export LOGVEIL_NOW="${LOGVEIL_NOW:-2026-11-28T12:00:00Z}"
input="$work/in/access.log"
if [ ! -s "$input" ]; then
  "$bin" generate --kind combined --lines "$lines" --seed 1 --span-hours 24 --out "$input"
fi
bytes=$(stat -c %s "$input")
echo "input: $lines lines, $(python3 -c "print(round($bytes/1e6, 1))") MB; machine: $(nproc) cores"

. benches/measure.sh

measure ingest_1_thread "$lines" "$bytes" "$bin" ingest --format combined --dev-key --no-progress --threads 1 --out "$work/out" "$input"
measure run_follow_1_thread "$lines" "$bytes" "$bin" run --once --no-progress "$(pipeline 1)"
measure ingest_all_cores "$lines" "$bytes" "$bin" ingest --format combined --dev-key --no-progress --threads 0 --out "$work/out" "$input"
measure run_follow_all_cores "$lines" "$bytes" "$bin" run --once --no-progress "$(pipeline 0)"
python3 - "$work" <<'PY'
import sys
w = sys.argv[1]
t = lambda n: float(open(f"{w}/time.{n}").read())
for k in ("1_thread", "all_cores"):
    r = t(f"ingest_{k}") / t(f"run_follow_{k}")
    print(f"run (followed) / ingest throughput, {k.replace('_', ' ')}: {r:.2f}")
PY
