#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (default 20), seeded with fuzz/seeds/<target> and the SPOP
# dictionary. Exits non-zero if any target crashes; the input is left in fuzz/artifacts/<target>/.
#
#   fuzz/smoke.sh            # 20 s per target
#   fuzz/smoke.sh 60         # 60 s per target
#   FUZZ_SANITIZER=none fuzz/smoke.sh   # if the ASan build does not work here
#
# Stable toolchain: cargo-fuzz needs nightly flags, RUSTC_BOOTSTRAP=1 enables them.
set -euo pipefail

secs="${1:-20}"
sanitizer="${FUZZ_SANITIZER:-address}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing; installing it from crates.io (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
cargo fuzz build --sanitizer "$sanitizer"

failed=()
summary=()
for target in $(cargo fuzz list); do
    mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
    log="$(mktemp)"
    echo "== $target: ${secs}s"
    if cargo fuzz run --sanitizer "$sanitizer" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -dict=fuzz/spop.dict -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        runs="$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo '?')"
        cov="$(grep -E '#[0-9]+[[:space:]]+DONE' "$log" | grep -oE 'cov: [0-9]+' || true)"
        summary+=("$target: ok, $runs execs in ${secs}s, ${cov:-cov: ?}")
    else
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -5 || tail -20 "$log"
        summary+=("$target: FAILED (see fuzz/artifacts/$target/)")
        failed+=("$target")
    fi
    rm -f "$log"
done

printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "fuzz smoke: ${#failed[@]} target(s) crashed: ${failed[*]}"
    exit 1
fi
echo "fuzz smoke: all targets ran ${secs}s without a crash"
