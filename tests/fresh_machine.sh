#!/usr/bin/env bash
# Proves that tests/deps.sh makes a fresh Debian 12 machine ready for the test suite:
#   1. builds a clean Debian 12 (bookworm) root with debootstrap in a temporary folder;
#   2. runs tests/deps.sh inside it (chroot), as a newcomer would on a new machine;
#   3. checks there every program, Python module and capability the tests and benchmarks use,
#      as tests/tools_used.pl derives them from their source.
# The Rust toolchain is not part of it (rustup, as the README says).
#
# Needs root (debootstrap, chroot, mount). Packages come from the Debian mirror this machine's
# apt already uses (/etc/apt/sources.list, /etc/apt/sources.list.d/*.sources).
# Cached under $MARKGATE_FRESH_CACHE (default ~/.cache/markgate/fresh-machine): the debootstrap
# root, downloaded packages and package lists, and the layer tests/deps.sh added (each run
# works on an overlay, so the cached root stays clean). A run with tests/deps.sh and the tests'
# needs unchanged checks that prepared root again (seconds); a change installs afresh from the
# clean root with the cached packages (minutes); the first run builds the root (longer).
# In the root, /usr/sbin/policy-rc.d keeps package scripts from starting daemons (nginx,
# Postfix) on this machine's ports.
#
# Usage: tests/fresh_machine.sh [--refresh] [--keep]
#   --refresh   build the base root again (e.g. after a Debian point release), then install
#   --keep      leave this run's layer in place for a look around (its path is printed)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${MARKGATE_FRESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/markgate/fresh-machine}
SUITE=bookworm
REFRESH=""
KEEP=""
for arg in "$@"; do
  case $arg in
    --refresh) REFRESH=1 ;;
    --keep) KEEP=1 ;;
    *) echo "usage: tests/fresh_machine.sh [--refresh] [--keep]" >&2; exit 2 ;;
  esac
done

say() { echo "fresh_machine.sh: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "run as root (debootstrap, chroot and mount need it)"; exit 2; }
START=$SECONDS

# --- the mirror this machine uses ---------------------------------------------------------
# "URI SUITE" for every Debian entry of the apt sources (deb822 and one-line formats).
debian_entries() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && uris != "" && suites != "")
          { n = split(uris, u, " "); m = split(suites, s, " ");
            for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j] }
        types = uris = suites = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^Types:/  { sub(/^Types:[ \t]*/, "");  types = $0 }
      /^URIs:/   { sub(/^URIs:[ \t]*/, "");   uris = $0 }
      /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -n 's/^deb[ \t]\+\(\[[^]]*\][ \t]\+\)\?\([^ \t]\+\)[ \t]\+\([^ \t]\+\).*/\2 \3/p' "$f"
  done
}
ENTRIES=$(debian_entries)
MIRROR=$(awk -v s="$SUITE" '$2 == s { print $1; exit }' <<<"$ENTRIES")
SECURITY=$(awk -v s="$SUITE-security" '$2 == s { print $1; exit }' <<<"$ENTRIES")
UPDATES=$(awk -v s="$SUITE-updates" '$2 == s { print $1; exit }' <<<"$ENTRIES")
[ -n "$MIRROR" ] || { say "no '$SUITE' entry in this machine's apt sources: cannot tell which mirror to use"; exit 2; }
say "mirror $MIRROR${SECURITY:+, security $SECURITY}"

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap (Debian's package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# --- the root: a cached base, and an overlay for this run ---------------------------------
# $CACHE/base: the debootstrap root, built once. $CACHE/installed: what a run of tests/deps.sh
# added to it (the run's overlay layer), kept with the key of its inputs; when tests/deps.sh
# and what the tests use are unchanged, that proven root is checked again instead of
# installing again.
mkdir -p "$CACHE/archives/partial" "$CACHE/lists/partial"
BASE="$CACHE/base"
KEY=$( (cat "$SRC/tests/deps.sh" "$SRC/tests/tools_used.pl"; perl "$SRC/tests/tools_used.pl" "$SRC" | awk '{ print $1, $2 }') | sha256sum | cut -c1-16)
WORK=$(mktemp -d /var/tmp/markgate-fresh.XXXXXX)
ROOTFS="$WORK/root"
MOUNTS=()

cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" 2>/dev/null || true
  done
  if [ -n "$KEEP" ]; then
    say "root kept at $ROOTFS (unmounted; the overlay layer is $WORK/upper)"
    return
  fi
  # Never delete through a mount that is still there (the cache, or this machine's /dev).
  if grep -q " $WORK/" /proc/mounts; then
    say "something is still mounted under $WORK; not deleting it"
  else
    rm -rf --one-file-system "$WORK"
  fi
}
trap cleanup EXIT

if [ -n "$REFRESH" ] || [ ! -e "$CACHE/base.ok" ]; then
  say "building a clean Debian 12 root with debootstrap (cold run: a few minutes)"
  t=$SECONDS
  rm -rf --one-file-system "$BASE" "$CACHE/installed" "$CACHE/installed.key" "$CACHE/base.ok"
  debootstrap --cache-dir="$CACHE/archives" "$SUITE" "$BASE" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -20 "$WORK/debootstrap.log" >&2
    say "debootstrap failed (log above)"
    exit 1
  }
  rm -f "$BASE"/var/cache/apt/archives/*.deb
  touch "$CACHE/base.ok"
  say "base root built in $((SECONDS - t)) s and cached in $BASE"
fi
REUSE=""
KIND=fresh
LOWER="$BASE"
if [ -e "$CACHE/installed.key" ] && [ "$(cat "$CACHE/installed.key")" = "$KEY" ]; then
  REUSE=1
  KIND=prepared
  LOWER="$CACHE/installed:$BASE"
  say "tests/deps.sh and what the tests use are unchanged since the root it prepared ($KEY): checking that root again"
fi
mkdir -p "$WORK/upper" "$WORK/work" "$ROOTFS"
mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$WORK/upper,workdir=$WORK/work" "$ROOTFS"
MOUNTS+=("$ROOTFS")

# --- make it a machine ----------------------------------------------------------------------
{
  echo "Types: deb"
  echo "URIs: $MIRROR"
  echo "Suites: $SUITE${UPDATES:+ $SUITE-updates}"
  echo "Components: main"
  echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
  if [ -n "$SECURITY" ]; then
    echo
    echo "Types: deb"
    echo "URIs: $SECURITY"
    echo "Suites: $SUITE-security"
    echo "Components: main"
    echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
  fi
} >"$ROOTFS/etc/apt/sources.list.d/debian.sources"
: >"$ROOTFS/etc/apt/sources.list"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
printf '#!/bin/sh\n# no daemons from package scripts inside this chroot\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
# An apt proxy this machine uses applies inside too.
apt-config dump 2>/dev/null | grep -i '^Acquire::\(http\|https\)::Proxy ' >"$ROOTFS/etc/apt/apt.conf.d/01proxy" || rm -f "$ROOTFS/etc/apt/apt.conf.d/01proxy"

mount_in() { # TYPE SOURCE TARGET [OPTIONS]
  mkdir -p "$3"
  mount ${4:+-o "$4"} -t "$1" "$2" "$3"
  MOUNTS+=("$3")
}
mount_in proc proc "$ROOTFS/proc"
mount_in sysfs sysfs "$ROOTFS/sys" ro
mount_in devtmpfs udev "$ROOTFS/dev" 2>/dev/null || { mkdir -p "$ROOTFS/dev"; mount --bind /dev "$ROOTFS/dev"; MOUNTS+=("$ROOTFS/dev"); }
mount_in devpts devpts "$ROOTFS/dev/pts" newinstance,ptmxmode=0666
mount_in tmpfs tmpfs "$ROOTFS/dev/shm" mode=1777
mount_in none "$CACHE/archives" "$ROOTFS/var/cache/apt/archives" bind
mount_in none "$CACHE/lists" "$ROOTFS/var/lib/apt/lists" bind

# The tests and benchmarks (the sources the tools are derived from), not the build output.
mkdir -p "$ROOTFS/src"
tar -C "$SRC" -cf - tests benches | tar -C "$ROOTFS/src" -xf -

in_root() {
  chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

say "running tests/deps.sh in the $KIND root"
t=$SECONDS
in_root bash /src/tests/deps.sh
say "tests/deps.sh finished in $((SECONDS - t)) s"

say "checking everything the tests and benchmarks use, derived from their source"
in_root perl /src/tests/tools_used.pl --check /src >"$WORK/check.txt" || {
  cat "$WORK/check.txt" >&2
  say "FAILED: a fresh Debian 12 machine with tests/deps.sh lacks what is listed above"
  exit 1
}
say "ok: $(grep -c '^ok' "$WORK/check.txt") programs, Python modules and capabilities present"
if [ -z "$REUSE" ]; then
  again=$(in_root bash /src/tests/deps.sh)
  case $again in *installing*) say "tests/deps.sh is not idempotent: a second run said: $again"; exit 1 ;; esac
  # Keep what tests/deps.sh added (this run's overlay layer) for the next run.
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount "${MOUNTS[$i]}"; done
  MOUNTS=()
  rm -rf "$WORK/upper/src" "$WORK/upper/tmp"/*
  rm -rf --one-file-system "$CACHE/installed" "$CACHE/installed.key"
  mv "$WORK/upper" "$CACHE/installed"
  echo "$KEY" >"$CACHE/installed.key"
fi
say "done in $((SECONDS - START)) s"
