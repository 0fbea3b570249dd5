#!/usr/bin/env bash
# Run every fuzz target in fuzz/fuzz_targets for a bounded time each (default 60 s), on the
# stable toolchain (`cargo fuzz run -s none`: no sanitizer, so no nightly).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Seeds are the committed corpora in fuzz/corpus/<target>/ (read, never written); what a run
# adds goes to fuzz/work/<target>/ (not committed). A crash or failed assertion stops the
# run with libFuzzer's report and the input under fuzz/artifacts/<target>/; the exit status
# is non-zero. Each target's last `#N DONE cov: ...` line (executions, coverage) is printed
# at the end. cargo-fuzz 0.13 is installed when missing.
set -euo pipefail

seconds=${1:-60}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version '^0.13'
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi

summary=()
for target in "${targets[@]}"; do
    mkdir -p "work/$target" "corpus/$target" "artifacts/$target"
    args=(-max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048
          -artifact_prefix="artifacts/$target/" -print_final_stats=1)
    if [ -f "dict/$target.dict" ]; then
        args+=(-dict="dict/$target.dict")
    fi
    log="work/$target.log"
    echo "== $target: ${seconds}s"
    set +e
    cargo fuzz run -s none --debug-assertions "$target" "work/$target" "corpus/$target" \
        -- "${args[@]}" >"$log" 2>&1
    status=$?
    set -e
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" | tail -n 2 || true
    if [ "$status" -ne 0 ]; then
        echo "!! $target failed (exit $status): see $here/$log and $here/artifacts/$target/" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    summary+=("$target: ${done_line:-no DONE line, see $here/$log}")
done

echo
echo "== summary (executions, coverage)"
printf '%s\n' "${summary[@]}"
