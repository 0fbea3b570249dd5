#!/usr/bin/env bash
# MX delivery with DANE benchmark: smtp-source -> RELAY -> the MX host of dst.test, end to
# end, where dst.test's MX record and the MX host's TLSA record (3 1 1) are served from a
# DNSSEC-signed test root (knot on 127.0.0.1), and the MX host is a Postfix 3.7 smtpd with
# a test-CA certificate on 127.0.0.2 that discards what it receives. RELAY is
#   markgate  markgate serve (release build, spool fsynced, records on), route mx = true,
#             validating the zones itself from the test root's anchor
#   postfix   a Postfix 3.7 relay with smtp_tls_security_level = dane, asking unbound
#             (validating from the same anchor, stub to knot) through its chroot resolv.conf
# One run at 10 KiB with 20 sessions. Prints msgs/s end to end, the ratio markgate/postfix,
# and markgate's peak RSS; checks that both relays' deliveries were DANE-verified.
#
# Usage: tests/bench/mx_dane.sh [N]     (N messages per run; default 2000)
# Needs: root, postfix, smtp-source, knot, ldnsutils, unbound.
set -euo pipefail

N="${1:-${N:-2000}}"
SESSIONS="${SESSIONS:-20}"
SIZE="${SIZE:-10240}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

for tool in smtp-source postfix knotd ldns-signzone ldns-keygen unbound; do
  command -v "$tool" >/dev/null || { echo "mx_dane.sh: $tool is required (tests/deps.sh; apt-get install unbound)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "mx_dane.sh: run as root (the Postfix peers need it)" >&2; exit 2; }

echo "building markgate (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet)
MARKGATE="$ROOT/target/release/markgate"

WORK="$(mktemp -d /tmp/markgate-mxbench.XXXXXX)"
chmod 755 "$WORK"
KNOT_PID=""; UNBOUND_PID=""; MG_PID=""; PF_UP=""; RCV_UP=""
cleanup() {
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
knotd -c knot.conf 2>"$D/knot.log" & KNOT_PID=$!
sleep 1

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
stub-zone:
    name: "."
    stub-addr: 127.0.0.1@$KNOT_PORT
CONF
unbound -c "$D/unbound.conf" & UNBOUND_PID=$!
cd "$WORK"
for _ in $(seq 1 50); do
  if dig +short @127.0.0.54 dst.test MX >/dev/null 2>&1 || kdig +short @127.0.0.54 dst.test MX >/dev/null 2>&1; then break; fi
  sleep 0.1
done
kdig @127.0.0.54 +dnssec "_$MX_PORT._tcp.mx.dst.test" TLSA | grep -q "flags: qr rd ra ad" \
  || { echo "mx_dane.sh: unbound does not validate the test zone" >&2; cat "$D/unbound.log" >&2; exit 1; }

postfix_instance() { # $1 dir, $2 listen addr:port; rest: main.cf lines on stdin
  local PF="$1"; rm -rf "$PF"; mkdir -p "$PF/queue" "$PF/data" "$PF/queue/etc"
  chown postfix "$PF/data"
  awk -v listen="$2" '
    /^smtp[ \t]+inet/ { print listen " inet n - n - - smtpd"; next }
    /^smtp[ \t]+unix/ { print "smtp unix - - y - - smtp"; next }
    /^[a-z]/ && NF >= 8 { $5 = "n" } { print }' /etc/postfix/master.cf >"$PF/master.cf"
  { echo "compatibility_level = 3.7"; echo "queue_directory = $PF/queue"; echo "data_directory = $PF/data";
    echo "inet_protocols = ipv4"; echo "maillog_file_prefixes = $PF"; echo "maillog_file = $PF/maillog";
    cat; } >"$PF/main.cf"
  postfix -c "$PF" start >/dev/null 2>&1 || { echo "mx_dane.sh: postfix $PF did not start" >&2; exit 1; }
}

# --- the MX host: Postfix smtpd with TLS, discarding what it receives
postfix_instance "$WORK/rcv" "127.0.0.2:$MX_PORT" <<CFG
inet_interfaces = 127.0.0.2
mydestination =
local_recipient_maps =
relay_domains = dst.test
relay_transport = discard:
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, permit_auth_destination, reject
smtpd_tls_security_level = may
smtpd_tls_cert_file = $WORK/certs/dev-cert.pem
smtpd_tls_key_file = $WORK/certs/dev-key.pem
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
CFG
RCV_UP=1
wait_port "$MX_PORT" 127.0.0.2
delivered() { grep -c "status=sent (discarded" "$WORK/rcv/maillog" 2>/dev/null || true; }
wait_delivered() { # $1 baseline count, $2 start time; prints seconds until N more arrived
  local i=0 c
  while :; do
    c="$(delivered)"; c="${c:-0}"
    [ "$((c - $1))" -ge "$N" ] && break
    i=$((i + 1)); [ "$i" -gt 30000 ] && { echo "timeout: $((c - $1)) of $N" >&2; return 1; }
    sleep 0.02
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

base="$(delivered)"; base="${base:-0}"
t0="$(now)"
smtp-source -4 -s "$SESSIONS" -m "$N" -l "$SIZE" -f a@src.test -t b@dst.test "127.0.0.1:$MG_PORT" >/dev/null 2>&1
MG_S="$(wait_delivered "$base" "$t0")"
PEAK_KB="$(grep VmHWM "/proc/$MG_PID/status" | awk '{print $2}')"
kill -TERM "$MG_PID"; wait "$MG_PID" 2>/dev/null || true; MG_PID=""
MG_DANE="$("$MARKGATE" audit query --deliveries --format csv --db "$WORK/mg/var/records.sqlite" | grep -c ',dane,' || true)"

# --- Postfix relay with DANE
postfix_instance "$WORK/relay" "127.0.0.1:$(free_port)" <<CFG
inet_interfaces = 127.0.0.1
mydestination =
local_recipient_maps =
relay_domains = dst.test
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tcp_port = $MX_PORT
smtp_dns_support_level = dnssec
smtp_tls_security_level = dane
smtp_tls_loglevel = 1
smtp_host_lookup = dns
CFG
PF_UP=1
echo "nameserver 127.0.0.54" > "$WORK/relay/queue/etc/resolv.conf"
PF_PORT="$(awk '/ inet n - n - - smtpd/ {split($1, a, ":"); print a[2]; exit}' "$WORK/relay/master.cf")"
postfix -c "$WORK/relay" reload >/dev/null 2>&1 || true
wait_port "$PF_PORT"
base="$(delivered)"; base="${base:-0}"
t0="$(now)"
smtp-source -4 -s "$SESSIONS" -m "$N" -l "$SIZE" -f a@src.test -t b@dst.test "127.0.0.1:$PF_PORT" >/dev/null 2>&1
PF_S="$(wait_delivered "$base" "$t0")"
PF_DANE="$(grep -c "Verified TLS connection established to mx.dst.test" "$WORK/relay/maillog" || true)"

printf '%-9s %12s %10s   %s\n' relay "end-to-end/s" seconds "DANE-verified deliveries"
printf '%-9s %12s %10.2f   %s (records)   peak RSS %d MiB\n' markgate "$(rate "$MG_S")" "$MG_S" "$MG_DANE" "$((PEAK_KB / 1024))"
printf '%-9s %12s %10.2f   %s (TLS sessions logged Verified)\n' postfix "$(rate "$PF_S")" "$PF_S" "$PF_DANE"
printf 'ratio markgate/postfix = %s\n' "$(echo "scale=2; $PF_S / $MG_S" | bc -l)"
