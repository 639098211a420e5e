#!/usr/bin/env bash
# Writes seed inputs for every fuzz target into crates/parse/fuzz/corpus/<target>/, from the
# shared real-world corpus (read in place: $LOGVEIL_CORPUS, else <repo>/../shared/corpus) plus
# a few synthetic lines for formats the shared corpus lacks (session, proxy and app JSON).
# The generated corpus is git-ignored: the shared corpus' licences forbid committing it.
# Usage: crates/parse/fuzz/seed.sh            (safe to re-run; it only adds files)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="${LOGVEIL_CORPUS:-$here/../../../../shared/corpus}"
if [ ! -d "$src" ]; then
    echo "seed.sh: corpus not found at $src; writing synthetic seeds only" >&2
fi
exec python3 - "$src" "$here/corpus" <<'PY'
import hashlib, json, os, random, sys

src, out = sys.argv[1], sys.argv[2]
rng = random.Random(42)
counts = {}

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)
    counts[target] = counts.get(target, 0) + 1

def read_lines(rel, n):
    p = os.path.join(src, rel)
    if not os.path.isfile(p):
        return []
    with open(p, "rb") as f:
        ls = [l.rstrip(b"\r\n") for l in f.read().split(b"\n")]
    return [l for l in ls if l][:n]

def vectors(rel):
    p = os.path.join(src, rel)
    if not os.path.isfile(p):
        return []
    d = json.load(open(p))
    res = []
    for v in d.get("vectors") or d.get("cases") or []:
        if v.get("input_bytes_hex"):
            res.append(bytes.fromhex(v["input_bytes_hex"]))
        elif isinstance(v.get("input"), str):
            res.append(v["input"].encode())
    return res

combined = read_lines("access/apache_combined_2k.log", 150)
common = read_lines("netdata/netdata_weblog_common.log", 100)
full = read_lines("netdata/netdata_weblog_full.log", 60)
squid = read_lines("netdata/netdata_squid_access.log", 150) + read_lines(
    "netdata/netdata_squid_unknown.log", 1)
sys5424 = vectors("syslog/go_syslog_rfc5424.json")
sys3164 = vectors("syslog/go_syslog_rfc3164.json")
vrl_syslog = vectors("vrl/parse_syslog.json")
loghub = read_lines("syslog/loghub/OpenSSH_2k.log", 60) + read_lines(
    "syslog/loghub/Linux_2k.log", 60)
vrl_access = (vectors("vrl/parse_nginx_log.json") + vectors("vrl/parse_apache_log.json")
              + vectors("vrl/parse_common_log.json"))
vrl_logfmt = vectors("vrl/parse_logfmt.json") + vectors("vrl/parse_key_value.json")
vrl_json = vectors("vrl/parse_json.json")

# Synthetic lines (written for these seeds; documentation addresses only).
session = [
    '{"ts":"2026-11-28T10:15:30.123Z","event":"page_view","app":"web","session_id":"s-1",'
    '"device_id":"d-1","ip":"203.0.113.7","page":"/pricing","referrer":"https://example.com/",'
    '"duration_ms":1200,"consent":{"necessary":true,"statistics":false},'
    '"utm_source":"news","extra":1}',
    '{"ts":"2026-11-28T10:15:30+02:00","event":"click","app":"ios","consent":null,'
    '"account_id":"acct-\\u0034\\u0032","dest_host":"example.org"}',
    '{"event":"x","app":"y","ts":"bad"}',
]
proxy_json = [
    '{"ts":"2026-11-28T12:00:00.123Z","account_id":"acct-42","client_ip":"203.0.113.7",'
    '"method":"CONNECT","dest_host":"example.org","dest_port":443,"url":null,"status":200,'
    '"bytes_in":1200,"bytes_out":53000,"duration_ms":840}',
    '{"time":1764331200.5,"client":"2001:db8::1","user":42,"status_code":0,'
    '"bytes_up":1,"bytes_down":2,"elapsed_ms":3.7,"headers":{"a":[1,2]}}',
    '{"timestamp":"28/Nov/2026:12:00:00 +0100","src_ip":"198.51.100.2","account":"-"}',
]
app_json = [
    '{"ts":"2026-01-01T10:00:00Z","level":"info","msg":"hello","client":{"ip":"203.0.113.9"},'
    '"status":200,"duration_ms":12.5,"user":"u1","req":{"id":7},"tags":["a","b"]}',
    '\ufeff{"time":1767261600123,"message":"m","http":{"method":"GET","path":"/x",'
    '"status_code":"404"},"a":{"b":{"c":null}}}',
    '{"@timestamp":"2026-01-01 10:00:00,123","severity":"WARN","event":"e","userId":5}',
]
app_logfmt = [
    'ts=2026-01-01T10:00:00Z level=info msg="hello \\"world\\"" ip=203.0.113.9 status=200 '
    'duration_ms=3.5 path=/search?q=a user=bob tags=x',
    'time=1767261600 lvl=warn message=plain flag =odd user_id=42',
    'ts="2026-01-01 10:00:00,5" msg="unterminated',
]
syslog_extra = [
    b"<34>1 2026-11-28T10:15:30.123456+01:00 host app 123 ID47 "
    b'[ex@32473 iut="3" eventSource="App\\]x"][b@1 a="\\\\"] \xef\xbb\xbfmsg',
    b"<13>Nov 28 10:15:30 host sshd[42]: Accepted password",
    b"Nov  8 10:15:30.123 host postfix/smtpd: x",
    b"<190>Nov 28 2026 10:15:30: %SYS-5-CONFIG_I: Configured",
    b"2026-11-28T10:15:30.5+01:00 host prog: rsyslog high precision",
]
syslog_lines = sys5424 + sys3164 + vrl_syslog + loghub + syslog_extra

for l in combined + vrl_access + full:
    put("access", b"0" + l)
for l in common + vrl_access:
    put("access", b"1" + l)
for l in session + vrl_json:
    put("session_json", l)
for l in syslog_lines:
    put("syslog", b"A" + l)
for l in syslog_lines[:40]:
    framed = str(len(l)).encode() + b" " + l
    put("syslog", b"A" + framed)
    cfg = bytes(rng.randrange(256) for _ in range(12))
    put("syslog", b"\x80" + cfg + l)

# frame_decoder: max length byte, then (length byte, chunk)* over a stream of frames.
for i in range(60):
    frames = rng.sample(syslog_lines, min(len(syslog_lines), rng.randrange(1, 8)))
    stream = b""
    for f in frames:
        if rng.random() < 0.5:
            stream += str(len(f)).encode() + b" " + f
        else:
            stream += f + (b"\r\n" if rng.random() < 0.3 else b"\n")
    data = bytes([rng.choice([15, 63, 127, 255])])
    pos = 0
    while pos < len(stream):
        n = rng.randrange(1, 256)
        data += bytes([n]) + stream[pos:pos + n]
        pos += n
    put("frame_decoder", data[:4096])

for l in app_logfmt + vrl_logfmt:
    put("applog_logfmt", b"0" + l.encode() if isinstance(l, str) else b"0" + l)
    put("logfmt_pairs", l)
for l in loghub[:30] + combined[:20]:
    put("logfmt_pairs", l)
for l in app_json + vrl_json:
    b = l.encode() if isinstance(l, str) else l
    put("applog_json", b"0" + b)
    put("applog_json", b"\x80" + b)
for l in squid:
    put("proxy_squid", l)
for l in proxy_json + session:
    put("proxy_json", l)

groups = [combined, common, squid, syslog_lines, loghub, full,
          [s.encode() for s in session + proxy_json + app_json + app_logfmt]]
for g in groups:
    for i in range(0, min(len(g), 60), 10):
        put("detect", b"\n".join(g[i:i + 10]))
mixed = [l for g in groups for l in g[:3]]
put("detect", b"\n".join(mixed))

# custom_*: realistic format index (must match NGINX_FORMATS / APACHE_FORMATS order in
# src/lib.rs), or 0xC0 + a format string + "\n" + line.
for l in combined + vrl_access:
    put("custom_nginx", b"\x00" + l)
    put("custom_nginx", b"\x02" + l)
    put("custom_apache", b"\x00" + l)
for l in common:
    put("custom_nginx", b"\x01" + l)
    put("custom_apache", b"\x01" + l)
for l in full:
    put("custom_nginx", b"\x04" + l)
    put("custom_apache", b"\x02" + l)
nginx_specs = [
    b'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent',
    b"$remote_addr $time_iso8601 $request_method $uri $status",
    b"${remote_addr}:$remote_port [$time_local] $request_time $msec",
]
apache_specs = [
    b'%h %l %u %t \\"%r\\" %>s %b',
    b"%a %{%Y-%m-%d %H:%M:%S}t %m %U%q %H %>s %D",
    b"%{c}a %{usec}t %{ms}T %%",
]
for i, l in enumerate(combined[:40] + common[:40]):
    put("custom_nginx", b"\xc0" + nginx_specs[i % 3] + b"\n" + l)
    put("custom_apache", b"\xc0" + apache_specs[i % 3] + b"\n" + l)

for t in sorted(counts):
    print(f"{t}: {counts[t]} seeds")
PY
