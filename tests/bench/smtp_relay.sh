#!/usr/bin/env bash
# SMTP relay benchmark: smtp-source -> RELAY -> smtp-sink, end to end, for
#   direct   smtp-source straight into smtp-sink (the test tools' ceiling)
#   markgate markgate serve (release build, policy on, spool fsynced, relaying over SMTP)
#   postfix  a throwaway Postfix 3.7 relay set up as in ../shared/bench/ANCHORS.md
# at 10 KiB and 100 KiB with 20 sessions. Prints msgs/s end to end (and accepted), the
# ratio markgate/postfix, and markgate's peak RSS.
#
# Usage: tests/bench/smtp_relay.sh [N]     (N messages per run; default 3000; env N works too)
# Env: MARKGATE_BIN (a markgate binary to measure instead of building this checkout), SESSIONS (20), SIZES ("10240 102400"), DELIVERY_CONCURRENCY (markgate delivery.concurrency, default 64; Postfix sends to one destination over at most 20)
# Needs: root (Postfix instance), postfix, smtp-source, smtp-sink.
set -euo pipefail

N="${1:-${N:-3000}}"
SESSIONS="${SESSIONS:-20}"
SIZES="${SIZES:-10240 102400}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

for tool in smtp-source smtp-sink postfix; do
  command -v "$tool" >/dev/null || { echo "smtp_relay.sh: $tool is required (tests/deps.sh)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "smtp_relay.sh: run as root (the Postfix peer needs it)" >&2; exit 2; }

echo "building markgate (release)..." >&2
if [ -n "${MARKGATE_BIN:-}" ]; then
  MARKGATE=$MARKGATE_BIN # another build, measured as is
else
  (cd "$ROOT" && cargo build --release --quiet)
  MARKGATE="$ROOT/target/release/markgate"
fi

WORK="$(mktemp -d /tmp/markgate-bench.XXXXXX)"
chmod 755 "$WORK"
SINK_PID=""; MG_PID=""; PF_UP=""
cleanup() {
  [ -n "$MG_PID" ] && kill "$MG_PID" 2>/dev/null || true
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
  [ -n "$PF_UP" ] && postfix -c "$WORK/postfix" stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

SINK_PORT=""; SINK_OUT=""
start_sink() {
  SINK_PORT="$(free_port)"; SINK_OUT="$WORK/sink.$SINK_PORT.out"
  smtp-sink -u nobody -4 -c "127.0.0.1:$SINK_PORT" 1024 >"$SINK_OUT" 2>&1 &
  SINK_PID=$!
  wait_port "$SINK_PORT"
}
stop_sink() { kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""; }
sink_count() { tr '\r' '\n' <"$SINK_OUT" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || true; }
wait_delivered() { # $1 = start time; prints seconds until the sink has N messages
  local limit=$(( 600 * 10 )) i=0 c
  while :; do
    c="$(sink_count)"; c="${c:-0}"
    if [ "$c" -ge "$N" ]; then break; fi
    i=$((i + 1)); [ "$i" -gt "$limit" ] && { echo "timeout: sink has $c of $N" >&2; return 1; }
    sleep 0.02
  done
  echo "$(now) - $1" | bc -l
}
rate() { echo "scale=0; $N / $1" | bc -l; }

# One run: $1 = target port, $2 = size; prints "accepted_s e2e_s".
run_load() {
  local t0 t1 e2e
  t0="$(now)"
  smtp-source -4 -s "$SESSIONS" -m "$N" -l "$2" -f a@src.test -t b@dst.test "127.0.0.1:$1" >/dev/null 2>&1
  t1="$(now)"
  e2e="$(wait_delivered "$t0")"
  echo "$(echo "$t1 - $t0" | bc -l) $e2e"
}

# --- markgate: bench policy (unmarked traffic to an internal domain is allowed, no actions)
mkdir -p "$WORK/mg"
cp -r "$ROOT/policy" "$WORK/mg/policy"
sed -i 's/^unmarked = "OFFICIAL"/unmarked = "NOT PROTECTIVELY MARKED"/' "$WORK/mg/policy/markings.toml"
sed -i 's/domains = \["westmidlands.pnn.police.uk"\]/domains = ["westmidlands.pnn.police.uk", "dst.test"]/' "$WORK/mg/policy/destinations.toml"
"$MARKGATE" certs dev --dir "$WORK/mg/certs" >/dev/null

start_markgate() { # $1 sink port
  MG_PORT="$(free_port)"
  rm -rf "$WORK/mg/spool"
  cat >"$WORK/mg/markgate.toml" <<CFG
[smtp]
listen = "127.0.0.1:$MG_PORT"
hostname = "markgate.bench"
[policy]
dir = "$WORK/mg/policy"
[spool]
dir = "$WORK/mg/spool"
[tls]
cert = "$WORK/mg/certs/dev-cert.pem"
key = "$WORK/mg/certs/dev-key.pem"
signing_key = "$WORK/mg/certs/signing-key.pem"
[admin]
enabled = false
[delivery]
outbox = "$WORK/mg/outbox"
concurrency = ${DELIVERY_CONCURRENCY:-64}
[delivery.routes.internal]
host = "127.0.0.1"
port = $1
tls = "none"
CFG
  (cd "$WORK/mg" && MARKGATE_LOG="${MARKGATE_LOG:-info}" exec "$MARKGATE" serve --config "$WORK/mg/markgate.toml" 2>"$WORK/mg/serve.log") &
  MG_PID=$!
  wait_port "$MG_PORT"
}
stop_markgate() {
  PEAK_KB="$(grep VmHWM "/proc/$MG_PID/status" | awk '{print $2}')"
  MG_CPU_MS="$(awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$MG_PID/stat")"
  kill -TERM "$MG_PID"; wait "$MG_PID" 2>/dev/null || true; MG_PID=""
  if grep -q "delivery deferred\|failed permanently" "$WORK/mg/serve.log"; then
    echo "warning: markgate deferred or failed some deliveries (see log)" >&2
  fi
}

# --- Postfix, as in ANCHORS.md
start_postfix() { # $1 sink port
  PF="$WORK/postfix"; rm -rf "$PF"; mkdir -p "$PF/queue" "$PF/data"
  chown postfix "$PF/data"
  PF_PORT="$(free_port)"
  awk -v port="$PF_PORT" '
    /^smtp[ \t]+inet/ { print "127.0.0.1:" port " inet n - n - - smtpd"; next }
    /^[a-z]/ && NF >= 8 { $5 = "n" } { print }' /etc/postfix/master.cf >"$PF/master.cf"
  cat >"$PF/main.cf" <<CFG
compatibility_level = 3.7
queue_directory = $PF/queue
data_directory = $PF/data
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
relay_domains =
relayhost = [127.0.0.1]:$1
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtp_dns_support_level = disabled
maillog_file_prefixes = $PF
maillog_file = $PF/maillog
CFG
  postfix -c "$PF" start >/dev/null 2>&1 || { echo "smtp_relay.sh: postfix did not start (see $PF)" >&2; exit 1; }
  PF_UP=1
  wait_port "$PF_PORT"
}
stop_postfix() { postfix -c "$WORK/postfix" stop >/dev/null 2>&1 || true; PF_UP=""; sleep 1; }

printf '%-8s %-7s %10s %12s %12s\n' size relay "accepted/s" "end-to-end/s" "seconds"
for SIZE in $SIZES; do
  label="$((SIZE / 1024))KiB"

  start_sink
  read -r acc e2e < <(run_load "$SINK_PORT" "$SIZE")
  stop_sink
  DIRECT="$(rate "$e2e")"
  printf '%-8s %-7s %10s %12s %12.2f\n' "$label" direct "$(rate "$acc")" "$DIRECT" "$e2e"

  start_sink; start_markgate "$SINK_PORT"
  read -r acc e2e < <(run_load "$MG_PORT" "$SIZE")
  [ -n "${e2e:-}" ] || { echo "smtp_relay.sh: the markgate run did not complete" >&2; exit 1; }
  stop_markgate; stop_sink
  MG="$(rate "$e2e")"
  printf '%-8s %-7s %10s %12s %12.2f   peak RSS %d MiB, CPU %s ms/msg\n' "$label" markgate "$(rate "$acc")" "$MG" "$e2e" \
    "$((PEAK_KB / 1024))" "$(echo "scale=2; $MG_CPU_MS / $N" | bc -l)"

  start_sink; start_postfix "$SINK_PORT"
  read -r acc e2e < <(run_load "$PF_PORT" "$SIZE")
  [ -n "${e2e:-}" ] || { echo "smtp_relay.sh: the postfix run did not complete" >&2; exit 1; }
  stop_postfix; stop_sink
  PFR="$(rate "$e2e")"
  printf '%-8s %-7s %10s %12s %12.2f\n' "$label" postfix "$(rate "$acc")" "$PFR" "$e2e"

  printf '%-8s ratio markgate/postfix = %s   markgate/direct = %s\n' "$label" \
    "$(echo "scale=2; $MG / $PFR" | bc -l)" "$(echo "scale=2; $MG / $DIRECT" | bc -l)"
done
