#!/usr/bin/env bash
# Runs every logwire test on a fresh Debian machine: installs the real peers the tests talk to
# (idempotently), then runs the workspace tests, clippy and rustfmt.
#
#   ./scripts/test.sh              # everything
#   ./scripts/test.sh -p logwire-spop   # extra args go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

# --- peers -------------------------------------------------------------------------------------
# Debian packages the real-peer tests need. Each is installed only when missing.
need=()
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
    echo "test.sh: installing ${need[*]} from Debian"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
./scripts/peers/g3.sh
./scripts/peers/qlog.sh
./scripts/peers/nix.sh

# --- tests -------------------------------------------------------------------------------------
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
