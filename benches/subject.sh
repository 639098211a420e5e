#!/usr/bin/env bash
# Data-subject requests at scale: `logveil subject find`, `export` and `erase` over 30 days of
# the demo's access data scaled to MILLIONS million rows (default 100).
#
# The generated combined log (30 days, a pool of 5000 client addresses) is streamed through
# awk, which plants a subject: every (lines / 60)-th line is repeated with the client address
# 203.0.113.77, so the subject has 60 requests, two a day, each in a different hour partition
# and inside the same files as everyone else's rows (not in files of its own). The stream goes
# straight into `logveil ingest` (no input file on disk). Then, each as a new process timed
# with /usr/bin/time (wall seconds, peak RSS):
#   find    all 30 days (720 partitions) for the subject's address;
#   export  the subject's rows as JSON Lines with the cover sheet;
#   erase   rewrites the files that hold the subject's rows, receipts, verification find;
#   find    again (must report 0 rows).
# The first three run RUNS times (default 3; erase on a fresh copy of the root each time,
# and the median is printed).
#
# Usage: benches/subject.sh [MILLIONS (default 100)] [RUNS (default 3)]
# Needs /usr/bin/time (Debian package `time`). LOGVEIL_BENCH_DIR keeps the ingested root
# between runs (about 3 GB at 100 M rows, twice that while erase runs on a copy).
set -euo pipefail
cd "$(dirname "$0")/.."
millions=${1:-100}
runs=${2:-3}
work=${LOGVEIL_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"
trap '[ -z "${LOGVEIL_BENCH_DIR:-}" ] && rm -rf "$work"' EXIT

cargo build --release -q -p logveil
bin=$PWD/target/release/logveil
# The generator starts at 2026-11-27T00:00:00Z; 720 hours end on 2026-12-27.
now=2026-12-27T12:00:00Z
export LOGVEIL_NOW=$now
subject=203.0.113.77
root="$work/subject-${millions}m"
lines=$((millions * 1000000))
if [ ! -d "$root/access" ]; then
  echo "generating and ingesting ${millions} M lines over 30 days..."
  "$bin" generate --kind combined --lines "$lines" --seed 21 --span-hours 720 2>/dev/null \
    | awk -v step="$((lines / 60))" -v ip="$subject" \
        '{ print } NR % step == 0 { line = $0; sub(/^[^ ]+/, ip, line); print line }' \
    | "$bin" ingest --format combined --dev-key --no-progress --retention-days 90 --out "$root" - 2>/dev/null
fi
rows=$(python3 - "$root" <<'PY'
import json, pathlib, sys
print(sum(json.loads(p.read_text())["rows"] for p in pathlib.Path(sys.argv[1], "access").glob("dt=*/hour=*/_manifest.json")))
PY
)
files=$(find "$root/access" -name '*.parquet' | wc -l)
echo "access: $rows rows in $files files, $(du -sh "$root/access" | cut -f1); machine: $(nproc) cores"

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# time_it NAME CMD...: runs CMD, appends "secs kb" to $work/NAME.times.
time_it() {
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time.raw" "$@" > "$work/$name.out" 2> "$work/$name.err" \
    || { echo "$name failed:"; cat "$work/$name.err"; exit 1; }
  cat "$work/time.raw" >> "$work/$name.times"
}

report() {
  local name=$1 what=$2
  local t rss
  t=$(awk '{print $1}' "$work/$name.times" | median)
  rss=$(awk '{print $2}' "$work/$name.times" | sort -g | tail -1)
  printf '%-10s %10s %10.0f   %s\n' "$name" "$t" "$((rss / 1024))" "$what"
}

ids=(--dev-key --ip "$subject" --now "$now")
rm -f "$work"/*.times
for i in $(seq "$runs"); do
  time_it find "$bin" subject find --root "$root" "${ids[@]}" --json
  rm -rf "$work/export"
  time_it export "$bin" subject export --root "$root" "${ids[@]}" --out "$work/export"
  rm -rf "$work/copy"
  cp -a "$root" "$work/copy"
  time_it erase "$bin" subject erase --root "$work/copy" "${ids[@]}" --request-id "bench-$i" --json
  time_it after "$bin" subject find --root "$work/copy" "${ids[@]}" --json
done
found=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["rows"], sum(len(d["partitions"]) for d in r["datasets"]))' "$work/find.out")
erased=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["rows_removed"], r["partitions"], len(r["files"]), sum(f["rows_before"] for f in r["files"]), r["verified"])' "$work/erase.out")
left=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$work/after.out")
read -r frows fparts <<< "$found"
read -r erows eparts efiles rewritten verified <<< "$erased"
printf '%-10s %10s %10s   %s\n' step "wall (s)" "RSS (MB)" "what"
report find "$frows rows of the subject in $fparts partitions, 30 days searched"
report export "$(wc -l < "$work/export/access.jsonl") rows written with the cover sheet"
report erase "$erows rows removed from $efiles files ($rewritten rows rewritten) in $eparts partitions; verified: $verified"
report after "find after erase: $left rows"
