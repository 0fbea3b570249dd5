#!/usr/bin/env bash
# Installs the real peers the end-to-end tests talk to: swaks (SMTP client), Postfix's
# smtp-sink/smtp-source (receiving server, load), the stock `age` CLI (opens bundles),
# curl, nginx and wrk (HTTP peers), headless Chromium (admin page), aiosmtpd (Python
# SMTP server), knot + ldnsutils (a DNSSEC-signed test root for MX delivery) and dkimpy
# with PyNaCl and dnspython (independent DKIM verification, Ed25519 and RSA).
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v swaks >/dev/null || missing+=(swaks)
command -v age >/dev/null || missing+=(age)
command -v smtp-sink >/dev/null && command -v smtp-source >/dev/null || missing+=(postfix)
command -v curl >/dev/null || missing+=(curl)
command -v tar >/dev/null || missing+=(tar)
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v chromium >/dev/null || missing+=(chromium)
command -v knotd >/dev/null || missing+=(knot)
command -v ldns-signzone >/dev/null && command -v ldns-keygen >/dev/null || missing+=(ldnsutils)

if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Postfix must not ask questions or start a system MTA for the tests.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "tests/deps.sh: installing aiosmtpd"
  python3 -m pip install -q aiosmtpd 2>/dev/null || python3 -m pip install -q --break-system-packages aiosmtpd
fi

if ! python3 -c 'import dkim, nacl, dns.resolver' 2>/dev/null; then
  echo "tests/deps.sh: installing dkimpy, pynacl, dnspython"
  python3 -m pip install -q dkimpy pynacl dnspython 2>/dev/null || python3 -m pip install -q --break-system-packages dkimpy pynacl dnspython
fi

# Checked after installing: each tool the tests run.
for tool in knotd ldns-signzone ldns-keygen nginx swaks; do
  command -v "$tool" >/dev/null || { echo "tests/deps.sh: $tool is still missing" >&2; exit 1; }
done
python3 -c 'import aiosmtpd, dkim, nacl, dns.resolver' || { echo "tests/deps.sh: a Python module is still missing" >&2; exit 1; }

# tests/bench/mx_dane.sh: unbound, the validating resolver of the Postfix peer (Postfix
# trusts its resolver's AD bit), and kdig to check that it validates; Postfix receivers in
# tests/mx_delivery.rs (`postfix -c DIR`).
mx_missing=()
command -v unbound >/dev/null || mx_missing+=(unbound)
command -v kdig >/dev/null || mx_missing+=(knot-dnsutils)
command -v postfix >/dev/null || mx_missing+=(postfix)
if [ ${#mx_missing[@]} -gt 0 ]; then
  echo "tests/deps.sh: installing ${mx_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get install -y -qq --no-install-recommends "${mx_missing[@]}" >/dev/null
fi
for tool in unbound kdig postfix; do
  command -v "$tool" >/dev/null || { echo "tests/deps.sh: $tool is still missing" >&2; exit 1; }
done
