#!/usr/bin/env bash
# Behind-HAProxy benchmark (notes/spop.md §7): the same HAProxy frontend with SPOE (:8080) and without
# it (:8081), loaded by wrk; prints requests/s, latency, and CPU µs per request of HAProxy and of the
# logwire agent, from /proc/<pid>/stat. Loopback only; each run is bounded by --duration.
#
#   scripts/bench-haproxy.sh [DURATION_S=8] [CONNECTIONS=50] [extra `logwire serve` args…]
#
# Needs haproxy and wrk (apt-get install -y haproxy wrk). Uses ../shared/fixtures/spop/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-8}
CONNS=${2:-50}
shift $(( $# > 2 ? 2 : $# )) || true
FIXTURES=$(cd ../shared/fixtures/spop/bench && pwd)
for p in haproxy wrk; do
    command -v $p >/dev/null || { echo "bench-haproxy: $p missing: apt-get install -y $p" >&2; exit 1; }
done
cargo build --release -q -p logwire
TMP=$(mktemp -d)
trap 'kill $AGENT $HAP 2>/dev/null || true; rm -rf "$TMP"' EXIT
TCK=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

./target/release/logwire serve --db "$TMP/bench.db" --spop 127.0.0.1:12345 "$@" >"$TMP/agent.log" 2>&1 &
AGENT=$!
(cd "$FIXTURES" && exec haproxy -db -f haproxy-bench.cfg) >"$TMP/haproxy.log" 2>&1 &
HAP=$!
for _ in $(seq 50); do
    curl -s -o /dev/null http://127.0.0.1:8081/ && curl -s -o /dev/null http://127.0.0.1:8080/ && break
    sleep 0.1
done

run() { # name port
    local h0 a0 out reqs rps p50 p99 non2xx h1 a1
    h0=$(cpu_ticks $HAP); a0=$(cpu_ticks $AGENT)
    out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$2/")
    h1=$(cpu_ticks $HAP); a1=$(cpu_ticks $AGENT)
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    awk -v n="$1" -v r="$reqs" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v bad="${non2xx:-0}" \
        -v h="$((h1 - h0))" -v a="$((a1 - a0))" -v tck="$TCK" 'BEGIN {
        printf "%-8s %10s req  %10s req/s  p50 %-8s p99 %-8s non-2xx %-6s haproxy %6.2f µs/req  agent %6.2f µs/req\n",
            n, r, rps, p50, p99, bad, h * 1e6 / tck / r, a * 1e6 / tck / r }'
    echo "$1 $reqs $((h1 - h0)) $((a1 - a0))" >>"$TMP/results"
}

echo "wrk -t1 -c$CONNS -d${DURATION}s; HAProxy nbthread 1; logwire serve $*"
run no-spoe 8081
run spoe 8080
awk -v tck="$TCK" '
    $1=="no-spoe" {hb = $3 / $2}
    $1=="spoe" {hs = $3 / $2; ag = $4 / $2}
    END {
        printf "SPOE adds %.2f µs of HAProxy CPU per request; logwire agent: %.2f µs CPU per request (goal <= 2)\n",
            (hs - hb) * 1e6 / tck, ag * 1e6 / tck
    }' "$TMP/results"
kill -TERM $AGENT; wait $AGENT 2>/dev/null || true
tail -1 "$TMP/agent.log"
