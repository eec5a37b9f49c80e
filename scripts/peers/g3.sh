#!/usr/bin/env bash
# Installs the real peers of the g3proxy tests (crates/logwire/tests/g3.rs), idempotently, on Debian 12:
# rsyslog (the syslog relay the tests configure and run in the foreground; its system service is not used),
# and the Node.js fluent-logger client (below).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v rsyslogd >/dev/null 2>&1 && [ ! -x /usr/sbin/rsyslogd ]; then
    echo "peers/g3.sh: installing rsyslog from Debian"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rsyslog
fi

# Node.js and the `fluent-logger` npm package: a fluentd forward client written by others, with the
# shared_key handshake, ack requests and all three event modes. Installed into scripts/peers/.node (ignored
# by git); the test finds it there.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "peers/g3.sh: installing nodejs and npm from Debian"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi
NODE_PEERS="$(cd "$(dirname "$0")" && pwd)/.node"
if ! grep -qs '"version": "3.4.1"' "$NODE_PEERS/node_modules/fluent-logger/package.json"; then
    echo "peers/g3.sh: installing fluent-logger 3.4.1 from npm into $NODE_PEERS"
    mkdir -p "$NODE_PEERS"
    npm install --silent --no-audit --no-fund --prefix "$NODE_PEERS" fluent-logger@3.4.1
fi
