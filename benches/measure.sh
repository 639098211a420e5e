# Sourced by the benchmark scripts: `measure NAME LINES BYTES COMMAND...` runs COMMAND $runs
# times under /usr/bin/time (removing $work/out before each run), prints the best time with
# lines/s, MB/s and that run's peak resident memory, and leaves the time in $work/time.NAME.
# `pipeline THREADS` writes a pipeline following $input (combined format) into $work/out and
# prints its path.
measure() {
  local name=$1 n=$2 size=$3; shift 3
  local best="" rss=0
  for _ in $(seq "$runs"); do
    rm -rf "$work/out"
    if ! /usr/bin/time -f "%e %M" -o "$work/time.raw" "$@" >/dev/null 2>"$work/stderr.$name"; then
      echo "$name failed:"; cat "$work/stderr.$name"; exit 1
    fi
    read -r secs kb < "$work/time.raw"
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $secs < $best else 1)"; then best=$secs; rss=$kb; fi
  done
  python3 -c "
s=$best; print(f'{\"$name\":<28} {s:7.2f} s  {$n/s/1e6:6.3f} M lines/s  {$size/1e6/s:7.1f} MB/s  max RSS {$rss/1024:6.0f} MB')"
  echo "$best" > "$work/time.$name"
}

pipeline() {
  cat > "$work/p$1.toml" <<EOF
[output]
root = "$work/out"
[keys]
dev_key = true
[runtime]
threads = $1
[[sources]]
name = "web"
format = "combined"
dataset = "access"
paths = ["$input"]
follow = true
EOF
  echo "$work/p$1.toml"
}
