#!/usr/bin/env bash
# Installs the real peer of the Nix tests (crates/logwire/tests/nix*.rs), idempotently, on Debian 12:
# Debian's nix-bin 2.8.0 (nix-daemon, nix-build, nix-store; protocol 1.34). The tests run
# `nix-daemon --stdio` themselves with `substituters =` and `sandbox = false`; no systemd is needed.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v nix-daemon >/dev/null 2>&1; then
    echo "peers/nix.sh: installing nix-bin from Debian"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nix-bin
fi
