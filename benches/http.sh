#!/usr/bin/env bash
# Sustained throughput of `logveil run` with the HTTP source: a loopback client (Python,
# CLIENTS keep-alive connections) posts NDJSON batches of BATCH session events for SECONDS
# seconds; then the daemon is stopped (SIGTERM: it reads its spool to the end and commits).
# Prints events/s acknowledged (200 = durable in the spool), events/s committed to Parquet
# (rows written / time from the first post to the end of the last commit), the client's p50
# and p99 request latency, the p99 commit latency (from the daemon's metrics), and the
# daemon's peak resident memory.
#
# Usage: benches/http.sh [SECONDS (default 20)] [CLIENTS (default 4)] [BATCH (default 1000)]
# Needs /usr/bin/time (Debian package `time`) and python3. LOGVEIL_BENCH_DIR keeps the files.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
clients=${2:-4}
batch=${3:-1000}
work=${LOGVEIL_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"
rm -rf "$work/out"
trap '[ -z "${LOGVEIL_BENCH_DIR:-}" ] && rm -rf "$work"' EXIT

cargo build --release -q -p logveil
bin=$PWD/target/release/logveil
export LOGVEIL_NOW="${LOGVEIL_NOW:-2026-11-28T12:00:00Z}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/p.toml" <<EOF
[output]
root = "$work/out"
[keys]
dev_key = true
[runtime]
metrics_address = "127.0.0.1:$mport"
[[sources]]
name = "events"
format = "session-json"
dataset = "session"
[sources.http]
address = "127.0.0.1:$port"
EOF

/usr/bin/time -f "%e %M" -o "$work/time.raw" "$bin" run --no-progress "$work/p.toml" 2>"$work/stderr" &
timepid=$!
for _ in $(seq 300); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
  sleep 0.1
done
echo "machine: $(nproc) cores; $clients clients, batches of $batch events, $secs s"

python3 - "$port" "$secs" "$clients" "$batch" "$work" <<'PY'
import http.client, json, random, sys, threading, time
port, secs, clients, batch, work = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
# Session events like the fixtures': consent given, a mix of apps, pages and devices.
rnd = random.Random(1)
apps = ["web", "extension", "ios", "android"]
pages = ["/dashboard", "/dashboard/proxies", "/billing", "/settings/profile", "/docs/api"]
uas = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
       "ProxyApp/3.2.1 (Android 14; SM-S928B)", "ProxyApp/3.2.0 (iOS 18.1; iPhone15,2)"]
def event(i):
    return json.dumps({
        "ts": "2026-11-27T%02d:%02d:%02d.000Z" % (i // 3600 % 24, i // 60 % 60, i % 60),
        "event": rnd.choice(["page_view", "click", "session_start", "session_end"]),
        "session_id": "%032x" % rnd.getrandbits(128), "device_id": "%016x" % rnd.getrandbits(64),
        "ip": "10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255)),
        "user_agent": rnd.choice(uas), "page": rnd.choice(pages), "app": rnd.choice(apps),
        "app_version": "3.2.1", "duration_ms": rnd.randrange(10000),
        "consent": {"statistics": True, "preferences": rnd.random() < 0.5, "marketing": False},
    })
bodies = []
for b in range(16):
    bodies.append(("\n".join(event(b * batch + i) for i in range(batch)) + "\n").encode())
print(f"batch body: {len(bodies[0]) / 1e3:.0f} kB ({len(bodies[0]) / batch:.0f} B/event)")
stop_at = time.time() + secs
acked, busy, lat = [0] * clients, [0] * clients, [[] for _ in range(clients)]
def client(k):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    n = k
    while time.time() < stop_at:
        body = bodies[n % len(bodies)]; n += clients
        t = time.perf_counter()
        try:
            c.request("POST", "/v1/events", body, {"Content-Type": "application/x-ndjson"})
            r = c.getresponse(); r.read()
        except (ConnectionError, http.client.HTTPException):
            # A refusal (503) closes the connection before the body is read: reconnect.
            c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            busy[k] += 1; time.sleep(0.05)
            continue
        lat[k].append(time.perf_counter() - t)
        if r.status == 200:
            acked[k] += batch
        elif r.status == 503:
            busy[k] += 1
            c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            time.sleep(0.05)
        else:
            raise SystemExit(f"HTTP {r.status}")
start = time.time()
ts = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
for t in ts: t.start()
for t in ts: t.join()
took = time.time() - start
l = sorted(x for v in lat for x in v)
q = lambda p: l[min(len(l) - 1, int(p * len(l)))] * 1e3
print(f"acknowledged: {sum(acked)} events in {took:.1f} s = {sum(acked) / took:,.0f} events/s; 503 answers: {sum(busy)}; request latency p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms")
open(f"{work}/bench.json", "w").write(json.dumps({"start": start, "acked": sum(acked)}))
PY

# The commit latency histogram, before stopping.
python3 - "$mport" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
b = [(float(l.split('le="')[1].split('"')[0].replace("+Inf", "inf")), float(l.split()[-1]))
     for l in text.splitlines() if l.startswith("logveil_commit_seconds_bucket")]
if b:
    total = b[-1][1]
    p99 = next(le for le, n in b if n >= 0.99 * total)
    print(f"commits: {int(total)}; p99 commit latency <= {p99} s (histogram bucket)")
PY
kill -TERM "$(pgrep -P $timepid -x logveil || echo $timepid)"
wait $timepid || true
end=$(date +%s.%N)
read -r wall kb < "$work/time.raw"
python3 - "$work" "$end" "$kb" <<'PY'
import json, sys
work, end, kb = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
b = json.load(open(f"{work}/bench.json"))
summary = [l for l in open(f"{work}/stderr") if "records written" in l]
print("daemon:", summary[-1].strip() if summary else "(no summary)")
import re
m = re.search(r"(\d+) lines read", summary[-1]) if summary else None
if m:
    n = int(m.group(1))
    print(f"committed: {n} events in {end - b['start']:.1f} s = {n / (end - b['start']):,.0f} events/s (first post to last commit)")
print(f"daemon peak RSS: {kb / 1024:.0f} MB")
PY
