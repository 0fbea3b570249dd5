#!/usr/bin/env bash
# Seal throughput: markgate `bundle seal` against the stock age CLI (Debian's Go age 1.1) on
# the same input in the same run, plus markgate's peak memory sealing and opening.
#
#   benches/bundle_seal.sh                # 1 GiB input, median of 3 runs
#   SIZE_MIB=128 RUNS=1 benches/bundle_seal.sh   # CI-sized
#
# Both tools encrypt to one X25519 recipient and write to /dev/null; markgate also hashes
# every file for the manifest (in a reader thread, pipelined with encryption), tars and
# signs. Not part of `cargo test`.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

command -v age >/dev/null || { echo "the age CLI is needed (apt-get install age)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 2; }

cargo build --release --quiet --bin markgate
BIN="$ROOT/target/release/markgate"
KEY="$ROOT/tests/fixtures/keys/suffolk.key"
RECIPIENT=$(sed -n 's/^# public key: //p' "$KEY")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/markgate-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
INPUT="$WORK/input.bin"
BYTES=$((SIZE_MIB * 1024 * 1024))
head -c "$BYTES" /dev/urandom >"$INPUT"
"$BIN" certs dev --dir "$WORK/certs" >/dev/null
export MARKGATE_RECORDS__PATH="$WORK/records.sqlite" # seal records its decision
cat "$INPUT" >/dev/null # page cache warm for both tools

# run NAME CMD... -> appends "seconds peak_kib" to $WORK/NAME
run() {
  local name=$1
  shift
  /usr/bin/time -o "$WORK/time.out" -f '%e %M' "$@" >/dev/null 2>"$WORK/stderr.out" || {
    cat "$WORK/stderr.out" >&2
    exit 1
  }
  tail -1 "$WORK/time.out" >>"$WORK/$name"
}

median() { sort -n "$WORK/$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
peak_mib() { sort -n -k2 "$WORK/$1" | tail -1 | awk '{ printf "%.1f", $2 / 1024 }'; }
mbps() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }

export MARKGATE_LOG=warn
for _ in $(seq "$RUNS"); do
  run age_seal age -r "$RECIPIENT" -o /dev/null "$INPUT"
  run mg_seal "$BIN" bundle seal --policy "$ROOT/policy" --signing-key "$WORK/certs/signing-key.pem" \
    --to suffolk-police --marking OFFICIAL --from bench -o /dev/null "$INPUT"
done

# Opening: one sealed bundle, decrypted by age and fully verified by markgate (inspect
# writes nothing; open writes the files).
"$BIN" bundle seal --policy "$ROOT/policy" --signing-key "$WORK/certs/signing-key.pem" \
  --to suffolk-police --marking OFFICIAL --from bench -o "$WORK/bundle.age" "$INPUT" 2>/dev/null
rm -f "$INPUT"
for _ in $(seq "$RUNS"); do
  run age_open age -d -i "$KEY" -o /dev/null "$WORK/bundle.age"
  run mg_inspect "$BIN" bundle inspect -i "$KEY" --signing-pub "$WORK/certs/signing-pub.pem" "$WORK/bundle.age"
done
run mg_open "$BIN" bundle open -i "$KEY" --signing-pub "$WORK/certs/signing-pub.pem" "$WORK/bundle.age" -o "$WORK/opened"

AGE_S=$(median age_seal)
MG_S=$(median mg_seal)
AGE_D=$(median age_open)
MG_D=$(median mg_inspect)
echo "input: ${SIZE_MIB} MiB, median of ${RUNS} run(s), $(nproc) cores"
printf '%-44s %8s s %8s MB/s\n' "age -r KEY -o /dev/null (stock CLI)" "$AGE_S" "$(mbps "$AGE_S")"
printf '%-44s %8s s %8s MB/s\n' "markgate bundle seal -o /dev/null" "$MG_S" "$(mbps "$MG_S")"
awk -v a="$AGE_S" -v m="$MG_S" 'BEGIN { printf "seal ratio markgate/age: %.2f (target >= 0.9)\n", a / m }'
printf '%-44s %8s s %8s MB/s\n' "age -d -o /dev/null (stock CLI)" "$AGE_D" "$(mbps "$AGE_D")"
printf '%-44s %8s s %8s MB/s\n' "markgate bundle inspect (verify all)" "$MG_D" "$(mbps "$MG_D")"
awk -v a="$AGE_D" -v m="$MG_D" 'BEGIN { printf "open ratio markgate/age: %.2f\n", a / m }'
echo "peak RSS: markgate seal $(peak_mib mg_seal) MiB, inspect $(peak_mib mg_inspect) MiB, open (writing files) $(peak_mib mg_open) MiB; age seal $(peak_mib age_seal) MiB"
