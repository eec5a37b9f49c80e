#!/usr/bin/env bash
# Installs the real peers of the g3proxy tests (crates/logwire/tests/g3.rs), idempotently, on Debian 12:
# rsyslog (the syslog relay the tests configure and run in the foreground; its system service is not used).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v rsyslogd >/dev/null 2>&1 && [ ! -x /usr/sbin/rsyslogd ]; then
    echo "peers/g3.sh: installing rsyslog from Debian"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rsyslog
fi
