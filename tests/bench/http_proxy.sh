#!/usr/bin/env bash
# HTTP proxy hop benchmark (issue 5): wrk against a 1 KiB file served by nginx on 127.0.0.1,
# three ways in one run:
#   direct    wrk → nginx backend
#   nginx     wrk → nginx reverse proxy (keepalive 64, as in /work/shared/bench/ANCHORS.md) → backend
#   markgate  wrk → markgate serve (release, policy on) → backend
# and prints requests/s and p99 latency for each, the CPU time each proxy (nginx's master and
# workers, markgate) spent per request during the measured run (its own user + system time,
# from /proc, not wrk's or the backend's), and markgate's ratios to nginx. Every request
# markgate forwards waits for its decision record's fsync, so the run also reports how long
# an fdatasync takes on the store's file system just before it (the machine's conditions).
#
# markgate's traffic: origin-form requests with `Host: bench.backend.test`, a partner route
# ([[http.route]]) to the plain-http backend, each request declared
# `X-Protective-Marking: NOT PROTECTIVELY MARKED`. The full request path runs (marking read,
# destination classified, decision by the shipped policy, statement/tls checks, pooled
# upstream): the decision is `allow` by rule npm-anywhere with no actions, so no tls is
# required and the plain-http backend may be used.
#
# Usage: tests/bench/http_proxy.sh            (DURATION=10s CONNECTIONS=50 THREADS=2 ROUNDS=1)
# Env: COMMIT_DELAY (markgate's records.commit_delay; default: markgate's default);
#      HTTP_WORKERS (markgate's http.workers; default: one per CPU);
#      BASELINE_BIN (another markgate binary, e.g. one built from main, measured as "before"
#      in the same rounds, with the same configuration);
#      RECORDS_DIR (where the record store goes; default the scratch directory under /tmp;
#      /dev/shm takes the disk flush out, to see the CPU side alone: not a durable setup).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
COMMIT_DELAY=${COMMIT_DELAY:-}
RECORDS_DIR=${RECORDS_DIR:-}
BASELINE_BIN=${BASELINE_BIN:-}
HTTP_WORKERS=${HTTP_WORKERS:-}

for tool in nginx wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y nginx wrk curl)" >&2; exit 2; }
done

echo "building markgate (release)..." >&2
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin markgate
MARKGATE="$ROOT/target/release/markgate"

WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
  [ -n "$RECORDS_DIR" ] && rm -f "$RECORDS_DIR"/*-records-$$.sqlite*
  true
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
BACKEND=$(free_port)
PROXY=$(free_port)
GATE=$(free_port)
BEFORE=$(free_port)

mkdir -p "$WORK/www" "$WORK/tmp"
head -c 1024 /dev/zero | tr '\0' 'x' >"$WORK/www/1k.txt"

nginx_common="
worker_processes auto;
daemon off;
error_log $WORK/NAME-error.log warn;
pid $WORK/NAME.pid;
events { worker_connections 4096; }
"
nginx_http="
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/tmp/NAME-body;
  proxy_temp_path $WORK/tmp/NAME-proxy;
  fastcgi_temp_path $WORK/tmp/NAME-fastcgi;
  uwsgi_temp_path $WORK/tmp/NAME-uwsgi;
  scgi_temp_path $WORK/tmp/NAME-scgi;
"
cat >"$WORK/backend.conf" <<EOF
${nginx_common//NAME/backend}
http {
${nginx_http//NAME/backend}
  server {
    listen 127.0.0.1:$BACKEND reuseport;
    location / { root $WORK/www; }
  }
}
EOF
cat >"$WORK/proxy.conf" <<EOF
${nginx_common//NAME/proxy}
http {
${nginx_http//NAME/proxy}
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 64; }
  server {
    listen 127.0.0.1:$PROXY reuseport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
"$MARKGATE" certs dev --dir "$WORK/certs" >/dev/null
DELAY_LINE=""
[ -n "$COMMIT_DELAY" ] && DELAY_LINE="commit_delay = \"$COMMIT_DELAY\""
write_config() { # name port
  cat >"$WORK/$1.toml" <<EOF
[policy]
dir = "$ROOT/policy"

# Everything markgate writes stays in the scratch directory.
[records]
path = "${RECORDS_DIR:-$WORK}/$1-records-$$.sqlite"
checkpoint_log = "$WORK/$1-checkpoints.log"
$DELAY_LINE

[spool]
dir = "$WORK/$1-spool"

[delivery]
outbox = "$WORK/$1-outbox"

[smtp]
listen = "127.0.0.1:0"

[tls]
cert = "$WORK/certs/dev-cert.pem"
key = "$WORK/certs/dev-key.pem"
signing_key = "$WORK/certs/signing-key.pem"

[admin]
enabled = false

[http]
listen = "127.0.0.1:$2"
${HTTP_WORKERS:+workers = $HTTP_WORKERS}

[[http.route]]
host = "bench.backend.test"
upstream = "http://127.0.0.1:$BACKEND"
EOF
}
write_config markgate "$GATE"
if [ -n "$BASELINE_BIN" ]; then
  # Keys the baseline may predate are left out of its configuration.
  write_config before "$BEFORE"
  sed -i '/^checkpoint_log = /d; /^commit_delay = /d' "$WORK/before.toml"
fi

nginx -p "$WORK" -c "$WORK/backend.conf" & PIDS+=($!)
nginx -p "$WORK" -c "$WORK/proxy.conf" & PIDS+=($!); PROXY_PID=$!
# From the scratch directory, so whatever a default puts under var/ stays there too.
(cd "$WORK" && MARKGATE_LOG=warn exec "$MARKGATE" serve --config "$WORK/markgate.toml") & PIDS+=($!); GATE_PID=$!
if [ -n "$BASELINE_BIN" ]; then
  (cd "$WORK" && MARKGATE_LOG=warn exec "$BASELINE_BIN" serve --config "$WORK/before.toml") & PIDS+=($!); BEFORE_PID=$!
fi

wait_port() {
  for _ in $(seq 100); do
    (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on $1" >&2; exit 1
}
wait_port "$BACKEND"; wait_port "$PROXY"; wait_port "$GATE"
if [ -n "$BASELINE_BIN" ]; then wait_port "$BEFORE"; fi

MARK=(-H "Host: bench.backend.test" -H "X-Protective-Marking: NOT PROTECTIVELY MARKED")
# Sanity: each path returns the 1 KiB body.
for url in "http://127.0.0.1:$BACKEND/1k.txt" "http://127.0.0.1:$PROXY/1k.txt"; do
  [ "$(curl -s "$url" | wc -c)" = 1024 ] || { echo "bad response from $url" >&2; exit 1; }
done
[ "$(curl -s "${MARK[@]}" "http://127.0.0.1:$GATE/1k.txt" | wc -c)" = 1024 ] \
  || { echo "bad response from markgate:"; curl -s "${MARK[@]}" "http://127.0.0.1:$GATE/1k.txt"; exit 1; }

# wrk latency → milliseconds.
to_ms() {
  python3 -c '
import re, sys
m = re.match(r"([0-9.]+)(us|ms|s)$", sys.argv[1])
v, u = float(m.group(1)), m.group(2)
print("%.3f" % (v / 1000 if u == "us" else v * 1000 if u == "s" else v))' "$1"
}

# User + system CPU time, in clock ticks, of a process and its children (nginx's workers).
cpu_ticks() {
  python3 - "$1" <<'PY'
import os, sys
root = sys.argv[1]
total = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open("/proc/%s/stat" % pid).read()
    except OSError:
        continue
    fields = stat[stat.rfind(")") + 2:].split()
    if pid == root or fields[1] == root:
        total += int(fields[11]) + int(fields[12])
print(total)
PY
}

run() { # name url cpu-pid [headers...]
  local name=$1 url=$2 pid=$3; shift 3
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$@" "$url" >/dev/null # warm-up
  local out before after
  before=$([ "$pid" = - ] && echo 0 || cpu_ticks "$pid")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url")
  after=$([ "$pid" = - ] && echo 0 || cpu_ticks "$pid")
  local rps p99 errors requests cpu_us
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu_us=$(python3 -c "print('%.1f' % (($after - $before) * 1e6 / $(getconf CLK_TCK) / max($requests, 1)))")
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
  printf '%-9s %12s req/s   p99 %8s ms   CPU %6s us/req   %s\n' "$name" "$rps" "$p99" "$cpu_us" "$errors" >&2
  echo "$name $rps $p99 $cpu_us"
}

# How long an 8 KiB write + fdatasync takes where the record store is (200 samples).
fsync_probe() {
  python3 - "${RECORDS_DIR:-$WORK}/fsync-probe-$$" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
lat = []
for _ in range(200):
    os.write(fd, b"x" * 8192)
    t = time.perf_counter(); os.fdatasync(fd); lat.append(time.perf_counter() - t)
os.close(fd); os.unlink(sys.argv[1])
lat.sort()
print("fdatasync where the records are: p50 %.2f ms, p99 %.2f ms" % (lat[100] * 1e3, lat[197] * 1e3))
PY
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, 1 KiB response, $ROUNDS round(s), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
RESULTS="$WORK/results"
for round in $(seq "$ROUNDS"); do
  echo "round $round; $(fsync_probe)" >&2
  run direct "http://127.0.0.1:$BACKEND/1k.txt" - >>"$RESULTS"
  run nginx "http://127.0.0.1:$PROXY/1k.txt" "$PROXY_PID" >>"$RESULTS"
  run markgate "http://127.0.0.1:$GATE/1k.txt" "$GATE_PID" "${MARK[@]}" >>"$RESULTS"
  if [ -n "$BASELINE_BIN" ]; then
    run before "http://127.0.0.1:$BEFORE/1k.txt" "$BEFORE_PID" "${MARK[@]}" >>"$RESULTS"
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$RESULTS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rps, p99, cpu = line.split()
    rows.setdefault(name, []).append((float(rps), float(p99), float(cpu)))
med = {n: tuple(statistics.median(r[i] for r in v) for i in range(3)) for n, v in rows.items()}
print("\nmedian of %d round(s)" % len(rows["direct"]))
print("%-9s %12s %10s %12s" % ("path", "req/s", "p99 ms", "CPU us/req"))
for n in ("direct", "nginx", "markgate", "before"):
    if n in med:
        print("%-9s %12.0f %10.2f %12s" % (n, med[n][0], med[n][1], "-" if n == "direct" else "%.1f" % med[n][2]))
mg, ng, d = med["markgate"], med["nginx"], med["direct"]
print("\nmarkgate / nginx: %.2fx req/s (target >= 0.60), p99 %.2fx (target <= 2.00), CPU per request %.2fx" % (mg[0] / ng[0], mg[1] / ng[1], mg[2] / ng[2]))
if "before" in med:
    b = med["before"]
    print("before / nginx:   %.2fx req/s, p99 %.2fx, CPU per request %.2fx (BASELINE_BIN)" % (b[0] / ng[0], b[1] / ng[1], b[2] / ng[2]))
print("nginx / direct:   %.2fx req/s;  markgate / direct: %.2fx req/s" % (ng[0] / d[0], mg[0] / d[0]))
EOF
