#!/usr/bin/env bash
# HTTP proxy hop benchmark (issue 5): wrk against a 1 KiB file served by nginx on 127.0.0.1,
# three ways in one run:
#   direct    wrk → nginx backend
#   nginx     wrk → nginx reverse proxy (keepalive 64, as in /work/shared/bench/ANCHORS.md) → backend
#   markgate  wrk → markgate serve (release, policy on) → backend
# and prints requests/s and p99 latency for each, and markgate's ratios to nginx.
#
# markgate's traffic: origin-form requests with `Host: bench.backend.test`, a partner route
# ([[http.route]]) to the plain-http backend, each request declared
# `X-Protective-Marking: NOT PROTECTIVELY MARKED`. The full request path runs (marking read,
# destination classified, decision by the shipped policy, statement/tls checks, pooled
# upstream): the decision is `allow` by rule npm-anywhere with no actions, so no tls is
# required and the plain-http backend may be used.
#
# Usage: tests/bench/http_proxy.sh            (DURATION=10s CONNECTIONS=50 THREADS=2 ROUNDS=1)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}

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
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
BACKEND=$(free_port)
PROXY=$(free_port)
GATE=$(free_port)

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
cat >"$WORK/markgate.toml" <<EOF
[policy]
dir = "$ROOT/policy"

# Everything markgate writes stays in the scratch directory.
[records]
path = "$WORK/records.sqlite"

[spool]
dir = "$WORK/spool"

[delivery]
outbox = "$WORK/outbox"

[smtp]
listen = "127.0.0.1:0"

[tls]
cert = "$WORK/certs/dev-cert.pem"
key = "$WORK/certs/dev-key.pem"
signing_key = "$WORK/certs/signing-key.pem"

[admin]
enabled = false

[http]
listen = "127.0.0.1:$GATE"

[[http.route]]
host = "bench.backend.test"
upstream = "http://127.0.0.1:$BACKEND"
EOF

nginx -p "$WORK" -c "$WORK/backend.conf" & PIDS+=($!)
nginx -p "$WORK" -c "$WORK/proxy.conf" & PIDS+=($!)
MARKGATE_LOG=warn RUST_LOG=warn "$MARKGATE" serve --config "$WORK/markgate.toml" & PIDS+=($!)

wait_port() {
  for _ in $(seq 100); do
    (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on $1" >&2; exit 1
}
wait_port "$BACKEND"; wait_port "$PROXY"; wait_port "$GATE"

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

run() { # name url [headers...]
  local name=$1 url=$2; shift 2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$@" "$url" >/dev/null # warm-up
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url")
  local rps p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
  printf '%-9s %12s req/s   p99 %8s ms   %s\n' "$name" "$rps" "$p99" "$errors" >&2
  echo "$name $rps $p99"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, 1 KiB response, $ROUNDS round(s), $(nproc) CPUs" >&2
RESULTS="$WORK/results"
for round in $(seq "$ROUNDS"); do
  echo "round $round" >&2
  run direct "http://127.0.0.1:$BACKEND/1k.txt" >>"$RESULTS"
  run nginx "http://127.0.0.1:$PROXY/1k.txt" >>"$RESULTS"
  run markgate "http://127.0.0.1:$GATE/1k.txt" "${MARK[@]}" >>"$RESULTS"
done

python3 - "$RESULTS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rps, p99 = line.split()
    rows.setdefault(name, []).append((float(rps), float(p99)))
med = {n: (statistics.median(r for r, _ in v), statistics.median(p for _, p in v)) for n, v in rows.items()}
print("\nmedian of %d round(s)" % len(rows["direct"]))
print("%-9s %12s %10s" % ("path", "req/s", "p99 ms"))
for n in ("direct", "nginx", "markgate"):
    print("%-9s %12.0f %10.2f" % (n, *med[n]))
mg, ng, d = med["markgate"], med["nginx"], med["direct"]
print("\nmarkgate / nginx: %.2fx req/s (target >= 1.00), p99 %.2fx (target <= 1.00)" % (mg[0] / ng[0], mg[1] / ng[1]))
print("nginx / direct:   %.2fx req/s;  markgate / direct: %.2fx req/s" % (ng[0] / d[0], mg[0] / d[0]))
EOF
