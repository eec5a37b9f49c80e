#!/usr/bin/env bash
# Installs the real QUIC peers of the qlog tests, idempotently (root on Debian 12, or sudo):
# Debian's ngtcp2 example client/server (gtlsclient, gtlsserver), openssl for the test certificates,
# and aioquic from PyPI.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
command -v gtlsclient >/dev/null 2>&1 || need+=(ngtcp2-client)
command -v gtlsserver >/dev/null 2>&1 || [ -x /usr/sbin/gtlsserver ] || need+=(ngtcp2-server)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)
if [ ${#need[@]} -gt 0 ]; then
    echo "peers/qlog.sh: installing ${need[*]} from Debian"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
if ! python3 -c "import aioquic" >/dev/null 2>&1; then
    echo "peers/qlog.sh: installing aioquic from PyPI"
    python3 -m pip install --quiet "aioquic==1.7.2" || python3 -m pip install --quiet --break-system-packages "aioquic==1.7.2"
fi
