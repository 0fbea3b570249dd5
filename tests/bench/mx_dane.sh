#!/usr/bin/env bash
# MX delivery with DANE benchmark: smtp-source -> RELAY -> the MX host of dst.test, end to
# end, where dst.test's MX record and the MX host's TLSA record (3 1 1) are served from a
# DNSSEC-signed test root (knot on 127.0.0.1), and the MX host is a Postfix 3.7 smtpd with
# a test-CA certificate on 127.0.0.2 that discards what it receives. RELAY is
#   markgate  markgate serve (release build, spool fsynced, records on), route mx = true,
#             validating the zones itself from the test root's anchor
#   postfix   a Postfix 3.7 relay with smtp_tls_security_level = dane, asking unbound
#             (validating from the same anchor, stub to knot) through its chroot resolv.conf
# One run each at 10 KiB with 20 sessions, every step under a time limit. Prints msgs/s end
# to end, the ratio markgate/postfix, and peak memory of both relays (markgate: VmHWM of
# its one process; both: the peak of Rss and Pss summed over the relay's processes, sampled
# every 0.2 s); checks that every delivery of both relays was DANE-verified.
# Every address is in 127.0.0.0/8; unbound listens on 127.0.0.54:53 (port 53: the C
# resolver Postfix uses has no other), so nothing else may hold that address and port.
#
# Usage: tests/bench/mx_dane.sh [N]     (N messages per run; default 1000; env N works too)
# Env: SESSIONS (20), SIZE (10240), DELIVERY_CONCURRENCY (markgate delivery.concurrency, 20;
#      Postfix sends to one destination over at most 20), LIMIT (seconds per run, 600)
# Needs: root, postfix, smtp-source, knot, ldnsutils, unbound, kdig (tests/deps.sh).
set -euo pipefail

N="${1:-${N:-1000}}"
LIMIT="${LIMIT:-600}"
SESSIONS="${SESSIONS:-20}"
SIZE="${SIZE:-10240}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

for tool in smtp-source postfix knotd ldns-signzone ldns-keygen unbound kdig; do
  command -v "$tool" >/dev/null || { echo "mx_dane.sh: $tool is required (tests/deps.sh)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "mx_dane.sh: run as root (the Postfix peers need it)" >&2; exit 2; }

echo "building markgate (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet)
MARKGATE="$ROOT/target/release/markgate"

WORK="$(mktemp -d /tmp/markgate-mxbench.XXXXXX)"
chmod 755 "$WORK"
KNOT_PID=""; UNBOUND_PID=""; MG_PID=""; PF_UP=""; RCV_UP=""; SAMPLER=""
cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  [ -n "$MG_PID" ] && kill "$MG_PID" 2>/dev/null || true
  [ -n "$PF_UP" ] && postfix -c "$WORK/relay" stop >/dev/null 2>&1 || true
  [ -n "$RCV_UP" ] && postfix -c "$WORK/rcv" stop >/dev/null 2>&1 || true
  [ -n "$UNBOUND_PID" ] && kill "$UNBOUND_PID" 2>/dev/null || true
  [ -n "$KNOT_PID" ] && kill "$KNOT_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

MX_PORT="$(free_port)"
KNOT_PORT="$(free_port)"

# --- certificates: one test CA for the MX host
"$MARKGATE" certs dev --dir "$WORK/certs" --host mx.dst.test >/dev/null
SPKI_SHA256="$(openssl x509 -in "$WORK/certs/dev-cert.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)"

# --- DNSSEC-signed test root and zone, served by knot
D="$WORK/dns"; mkdir -p "$D"; cd "$D"
RKSK=$(ldns-keygen -a ECDSAP256SHA256 -k .); RZSK=$(ldns-keygen -a ECDSAP256SHA256 .)
TKEY=$(ldns-keygen -a ECDSAP256SHA256 -k test.)
SOA="IN SOA ns.test. admin.test. 1 3600 600 86400 300"
{ echo "\$TTL 300"; echo ". $SOA"; echo ". IN NS ns.test."; echo "test. IN NS ns.test."; echo "ns.test. IN A 127.0.0.1"; cat "$TKEY.ds"; } > root.zone
cat > test.zone <<ZONE
\$TTL 300
test. $SOA
test. IN NS ns.test.
ns.test. IN A 127.0.0.1
dst.test. IN MX 10 mx.dst.test.
mx.dst.test. IN A 127.0.0.2
_$MX_PORT._tcp.mx.dst.test. IN TLSA 3 1 1 $SPKI_SHA256
ZONE
ldns-signzone -o . -f root.zone.signed root.zone "$RKSK" "$RZSK"
ldns-signzone -o test. -f test.zone.signed test.zone "$TKEY"
cp "$RKSK.key" "$D/root-anchor.txt"
cat > knot.conf <<CONF
server:
    listen: 127.0.0.1@$KNOT_PORT
    rundir: $D
database:
    storage: $D/db
template:
  - id: default
    storage: $D
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: .
    file: root.zone.signed
  - domain: test.
    file: test.zone.signed
CONF
knotd -c knot.conf >/dev/null 2>"$D/knot.log" & KNOT_PID=$!
for _ in $(seq 1 100); do
  kdig +short -p "$KNOT_PORT" @127.0.0.1 dst.test MX 2>/dev/null | grep -q mx.dst.test && break
  sleep 0.1
done

# --- unbound: a validating resolver for Postfix (which trusts the AD bit of its resolver)
cat > "$D/unbound.conf" <<CONF
server:
    interface: 127.0.0.54
    port: 53
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$D"
    pidfile: ""
    use-syslog: no
    logfile: "$D/unbound.log"
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    trust-anchor-file: "$D/root-anchor.txt"
    module-config: "validator iterator"
    val-permissive-mode: no
    harden-dnssec-stripped: yes
    # unbound answers test. itself (RFC 6761) unless told not to
    local-zone: "test." nodefault
stub-zone:
    name: "."
    stub-addr: 127.0.0.1@$KNOT_PORT
CONF
unbound -c "$D/unbound.conf" & UNBOUND_PID=$!
cd "$WORK"
for _ in $(seq 1 100); do
  kdig +short @127.0.0.54 dst.test MX 2>/dev/null | grep -q mx.dst.test && break
  sleep 0.1
done
# the AD flag: unbound validated the TLSA answer from the test root's anchor
kdig @127.0.0.54 +dnssec "_$MX_PORT._tcp.mx.dst.test" TLSA | grep -qi "flags: qr rd ra ad" \
  || { echo "mx_dane.sh: unbound does not validate the test zone" >&2; cat "$D/unbound.log" >&2; exit 1; }

postfix_instance() { # $1 dir, $2 smtpd listen addr:port, $3 chroot the SMTP client (y/n); main.cf lines on stdin
  local PF="$1" f; rm -rf "$PF"; mkdir -p "$PF/queue/etc" "$PF/data"
  chown postfix "$PF/data"
  awk -v listen="$2" -v chroot="$3" '
    /^smtp[ \t]+inet/ { print listen " inet n - n - - smtpd"; next }
    /^(smtp|relay)[ \t]+unix/ { $5 = chroot; print; next }
    /^[a-z]/ && NF >= 8 { $5 = "n" } { print }' /etc/postfix/master.cf >"$PF/master.cf"
  # a chrooted client resolves with the queue's etc/ (resolv.conf naming unbound below)
  for f in services hosts host.conf nsswitch.conf localtime; do
    [ -e "/etc/$f" ] && cp -L "/etc/$f" "$PF/queue/etc/$f"
  done
  # glibc passes the resolver's AD bit to Postfix only with trust-ad
  printf 'nameserver 127.0.0.54\noptions trust-ad\n' >"$PF/queue/etc/resolv.conf"
  { echo "compatibility_level = 3.7"; echo "queue_directory = $PF/queue"; echo "data_directory = $PF/data";
    echo "inet_interfaces = 127.0.0.1"; echo "inet_protocols = ipv4"; echo "maillog_file_prefixes = $PF";
    echo "maillog_file = $PF/maillog"; cat; } >"$PF/main.cf"
  postfix -c "$PF" start >"$PF/start.out" 2>&1 || { echo "mx_dane.sh: postfix $PF did not start" >&2; cat "$PF/start.out" >&2; exit 1; }
}

# Peak memory while a run goes on: summed Rss and Pss (shared pages split between the
# processes that map them) of a process and its children, sampled every 0.2 s.
sample_memory() { # $1 file of "rss_kb pss_kb" lines; $2.. root pids; stops when $1.stop exists
  local out="$1" i=0 p r s tr ts; shift
  while [ ! -e "$out.stop" ] && [ "$i" -lt 4000 ]; do
    tr=0; ts=0
    for p in "$@" $(for q in "$@"; do pgrep -P "$q"; done); do
      read -r r s < <(awk '/^Rss:/ {r=$2} /^Pss:/ {s=$2} END {print r+0, s+0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo "0 0")
      tr=$((tr + r)); ts=$((ts + s))
    done
    echo "$tr $ts" >>"$out"
    i=$((i + 1)); sleep 0.2
  done
}
peak() { # $1 samples file, $2 column; MiB
  sort -n -k"$2" "$1" | tail -1 | awk -v c="$2" '{printf "%d", $c / 1024}'
}

# --- the MX host: Postfix smtpd with TLS, discarding what it receives
postfix_instance "$WORK/rcv" "127.0.0.2:$MX_PORT" n <<CFG
myhostname = mx.dst.test
mydestination =
local_recipient_maps =
relay_domains = dst.test
relay_transport = discard:
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, permit_auth_destination, reject
smtpd_tls_security_level = may
smtpd_tls_cert_file = $WORK/certs/dev-cert.pem
smtpd_tls_key_file = $WORK/certs/dev-key.pem
smtpd_tls_loglevel = 0
CFG
RCV_UP=1
wait_port "$MX_PORT" 127.0.0.2
delivered() { grep -c " status=sent " "$WORK/rcv/maillog" 2>/dev/null || true; }
wait_delivered() { # $1 baseline count, $2 start time; prints seconds until N more arrived
  local i=0 c
  while :; do
    c="$(delivered)"; c="${c:-0}"
    [ "$((c - $1))" -ge "$N" ] && break
    i=$((i + 1)); [ "$i" -gt "$((LIMIT * 10))" ] && { echo "timeout: $((c - $1)) of $N" >&2; return 1; }
    sleep 0.1
  done
  echo "$(now) - $2" | bc -l
}
rate() { echo "scale=0; $N / $1" | bc -l; }

# --- markgate
mkdir -p "$WORK/mg"
cp -r "$ROOT/policy" "$WORK/mg/policy"
sed -i 's/^unmarked = "OFFICIAL"/unmarked = "NOT PROTECTIVELY MARKED"/' "$WORK/mg/policy/markings.toml"
"$MARKGATE" certs dev --dir "$WORK/mg/certs" >/dev/null
MG_PORT="$(free_port)"
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
ca = "$WORK/certs/dev-ca.pem"
signing_key = "$WORK/mg/certs/signing-key.pem"
[admin]
enabled = false
[delivery]
outbox = "$WORK/mg/outbox"
concurrency = ${DELIVERY_CONCURRENCY:-20}
mx_port = $MX_PORT
[delivery.dns]
servers = ["127.0.0.1:$KNOT_PORT"]
trust_anchors = "$D/root-anchor.txt"
[delivery.mta_sts]
cache = "$WORK/mg/mta-sts"
[delivery.routes.internet]
mx = true
CFG
(cd "$WORK/mg" && MARKGATE_LOG="${MARKGATE_LOG:-warn}" exec "$MARKGATE" serve --config "$WORK/mg/markgate.toml" 2>"$WORK/mg/serve.log") &
MG_PID=$!
wait_port "$MG_PORT"

load() { # $1 port: N messages from SESSIONS sessions, within LIMIT seconds
  timeout "$LIMIT" smtp-source -4 -s "$SESSIONS" -m "$N" -l "$SIZE" -f a@src.test -t b@dst.test "127.0.0.1:$1" >/dev/null 2>&1 \
    || { echo "mx_dane.sh: smtp-source to port $1 failed or timed out" >&2; exit 1; }
}

base="$(delivered)"; base="${base:-0}"
sample_memory "$WORK/mg.mem" "$MG_PID" & SAMPLER=$!
t0="$(now)"
load "$MG_PORT"
MG_S="$(wait_delivered "$base" "$t0")"
touch "$WORK/mg.mem.stop"; wait "$SAMPLER" || true
PEAK_KB="$(grep VmHWM "/proc/$MG_PID/status" | awk '{print $2}')"
kill -TERM "$MG_PID"; wait "$MG_PID" 2>/dev/null || true; MG_PID=""
MG_DANE="$("$MARKGATE" audit query --deliveries --format json --db "$WORK/mg/var/records.sqlite" \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print(sum(1 for x in r if x["outcome"]=="delivered" and x["verification"]=="dane"))')"

# --- Postfix relay with DANE
PF_PORT="$(free_port)"
postfix_instance "$WORK/relay" "127.0.0.1:$PF_PORT" y <<CFG
myhostname = relay.src.test
mydestination =
local_recipient_maps =
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tcp_port = $MX_PORT
smtp_dns_support_level = dnssec
smtp_tls_security_level = dane
smtp_tls_loglevel = 1
smtp_host_lookup = dns
CFG
PF_UP=1
wait_port "$PF_PORT"
base="$(delivered)"; base="${base:-0}"
sample_memory "$WORK/pf.mem" "$(tr -d ' ' <"$WORK/relay/queue/pid/master.pid")" & SAMPLER=$!
t0="$(now)"
load "$PF_PORT"
PF_S="$(wait_delivered "$base" "$t0")"
touch "$WORK/pf.mem.stop"; wait "$SAMPLER" || true
PF_SENT="$(grep -c "relay=mx.dst.test.* status=sent" "$WORK/relay/maillog" || true)"
PF_DANE="$(grep -c "Verified TLS connection established to mx.dst.test" "$WORK/relay/maillog" || true)"
PF_OTHER="$(grep -cE "(Untrusted|Anonymous|Trusted) TLS connection established to mx.dst.test" "$WORK/relay/maillog" || true)"
[ "$PF_OTHER" -eq 0 ] || echo "warning: Postfix made $PF_OTHER TLS connections that were not DANE-verified" >&2
[ "$MG_DANE" -eq "$N" ] || echo "warning: markgate recorded $MG_DANE of $N deliveries as DANE-verified" >&2

echo "MX delivery with DANE, $N messages of $((SIZE / 1024)) KiB, $SESSIONS sessions; $(nproc) cores"
printf '%-9s %12s %10s %14s %14s   %s\n' relay "end-to-end/s" seconds "peak Rss sum" "peak Pss sum" "DANE-verified"
printf '%-9s %12s %10.2f %10s MiB %10s MiB   %s of %s deliveries (records); VmHWM %d MiB\n' markgate "$(rate "$MG_S")" "$MG_S" \
  "$(peak "$WORK/mg.mem" 1)" "$(peak "$WORK/mg.mem" 2)" "$MG_DANE" "$N" "$((PEAK_KB / 1024))"
printf '%-9s %12s %10.2f %10s MiB %10s MiB   %s deliveries sent over %s TLS sessions logged Verified\n' postfix "$(rate "$PF_S")" "$PF_S" \
  "$(peak "$WORK/pf.mem" 1)" "$(peak "$WORK/pf.mem" 2)" "$PF_SENT" "$PF_DANE"
printf 'ratio markgate/postfix = %s\n' "$(echo "scale=2; $PF_S / $MG_S" | bc -l)"
