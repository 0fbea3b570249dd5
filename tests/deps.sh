#!/usr/bin/env bash
# Installs what the tests and benchmarks use, with the capabilities they use, from Debian 12's
# packages: swaks with TLS (STARTTLS needs Net::SSLeay and IO::Socket::SSL, which swaks only
# recommends), Postfix's smtp-sink/smtp-source, the stock `age` CLI, curl, nginx and wrk,
# headless Chromium, knot, knot-dnsutils, ldnsutils and unbound (a DNSSEC-signed test root),
# Python 3 with aiosmtpd, dkimpy (with PyNaCl for Ed25519) and dnspython, openssl, bc and
# time for the benchmark scripts.
#
# What is needed is not listed here by hand: tests/tools_used.pl derives it from the tests
# and benchmarks themselves and checks each item (a program, a Python module, a capability
# such as `swaks --support` reporting TLS). This script installs the packages for what is
# missing, checks again, and fails naming anything still missing.
#
# Idempotent: when everything is present it installs nothing. Needs root (or sudo) for
# apt-get. tests/fresh_machine.sh proves it on a clean Debian 12 root.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# The Debian package that provides each item tests/tools_used.pl may report (KIND:NAME).
# Python modules not listed come with python3 itself (the standard library).
declare -A PACKAGES=(
  [command:swaks]="swaks libnet-ssleay-perl libio-socket-ssl-perl"
  [capability:swaks-starttls]="libnet-ssleay-perl libio-socket-ssl-perl"
  [command:age]="age"
  [command:/usr/bin/age]="age"
  [command:postfix]="postfix"
  [command:smtp-sink]="postfix"
  [command:smtp-source]="postfix"
  [command:curl]="curl"
  [command:nginx]="nginx"
  [command:wrk]="wrk"
  [command:chromium]="chromium fonts-dejavu-core"
  [capability:chromium-headless-screenshot]="chromium fonts-dejavu-core"
  [command:python3]="python3"
  [python:aiosmtpd]="python3-aiosmtpd"
  [command:openssl]="openssl"
  [capability:openssl-rawin]="openssl"
  [command:knotd]="knot"
  [command:kdig]="knot-dnsutils"
  [command:ldns-signzone]="ldnsutils"
  [command:ldns-keygen]="ldnsutils"
  [command:unbound]="unbound"
  [python:dkim]="python3-dkim"
  [python:dns]="python3-dnspython"
  [capability:dkim-ed25519]="python3-nacl"
  [command:bc]="bc"
  [command:/usr/bin/time]="time"
  [command:tar]="tar"
  [command:zip]="zip"
  [command:unzip]="unzip"
  [command:timeout]="coreutils"
  [command:base64]="coreutils"
  [command:sha256sum]="coreutils"
  [command:truncate]="coreutils"
  [command:kill]="procps"
  [command:mount]="mount"
  [command:umount]="mount"
  [command:mkfs.ext4]="e2fsprogs"
  [command:e2fsck]="e2fsprogs"
  [command:sqlite3]="sqlite3"
  [command:getconf]="libc-bin"
)

# Items missing on this machine, as KIND:NAME lines (exit 2 when the tests cannot be read).
missing_items() {
  local report status=0
  report=$(perl tests/tools_used.pl --check 2>/dev/null) || status=$?
  if [ "$status" -ge 2 ]; then
    perl tests/tools_used.pl >/dev/null # prints what it could not read
    return 2
  fi
  awk '$1 == "MISSING" { print $2 ":" $3 }' <<<"$report"
}

missing=$(missing_items) || exit 1
if [ -z "$missing" ]; then
  echo "tests/deps.sh: everything the tests use is installed"
  exit 0
fi

packages=()
unknown=()
for item in $missing; do
  pkg=${PACKAGES[$item]:-}
  if [ -z "$pkg" ] && [[ $item == python:* ]]; then pkg=python3; fi
  if [ -z "$pkg" ]; then unknown+=("$item"); else packages+=($pkg); fi
done
if [ ${#unknown[@]} -gt 0 ]; then
  echo "tests/deps.sh: the tests use ${unknown[*]}, which this machine lacks and for which" \
    "no Debian package is listed: add it to PACKAGES in tests/deps.sh" >&2
  perl tests/tools_used.pl --check >/dev/null || true
  exit 1
fi

mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
echo "tests/deps.sh: missing $(echo $missing); installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Postfix must not ask questions or start a system MTA for the tests.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

# A python3 on PATH that is not Debian's (pyenv, a virtualenv) does not see Debian's Python
# packages: give it the same modules from PyPI.
if [ "$(command -v python3)" != /usr/bin/python3 ]; then
  declare -A PYPI=([aiosmtpd]=aiosmtpd [dkim]=dkimpy [dns]=dnspython [nacl]=pynacl)
  wanted=()
  for module in "${!PYPI[@]}"; do
    python3 -c "import $module" 2>/dev/null || wanted+=("${PYPI[$module]}")
  done
  if [ ${#wanted[@]} -gt 0 ]; then
    echo "tests/deps.sh: $(command -v python3) is not Debian's python3: installing ${wanted[*]} with pip"
    python3 -m pip install -q "${wanted[@]}" 2>/dev/null || python3 -m pip install -q --break-system-packages "${wanted[@]}"
  fi
fi

if ! perl tests/tools_used.pl --check >/dev/null 2>"${TMPDIR:-/tmp}/markgate-deps.$$"; then
  echo "tests/deps.sh: still missing after installing ${packages[*]}:" >&2
  sed 1d "${TMPDIR:-/tmp}/markgate-deps.$$" >&2
  rm -f "${TMPDIR:-/tmp}/markgate-deps.$$"
  exit 1
fi
rm -f "${TMPDIR:-/tmp}/markgate-deps.$$"
echo "tests/deps.sh: everything the tests use is installed"
