#!/usr/bin/env bash
# Issue 6's time-only flip lateness with the system clock, release build: USERS users
# enter "active in the last 20 s" within a few seconds, then leave it on time alone while
# RATE single events/s of other load run; prints the node's timer lag histogram
# (uss_timer_lag_seconds: now - due when each timer fired).
#   USERS=20000 RATE=5000 loadtest/flips.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release; USERS=${USERS:-20000}; RATE=${RATE:-5000}; PORT=7302; url=http://127.0.0.1:$PORT
D=$(mktemp -d /tmp/uss-flips.XXXX)
$BIN/uss serve --data-dir "$D" --bind 127.0.0.1:$PORT > "$D.log" 2>&1 &
SP=$!
trap 'kill "$SP" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$D"' EXIT
for i in $(seq 1 100); do curl -sf $url/readyz >/dev/null && break; sleep 0.1; done
members() {
  curl -s $url/api/v1/segments | grep -o '"name":"active_20s"[^}]*' | grep -o '"member_count":[0-9]*'
}
curl -s -XPOST $url/api/v1/segments -H 'content-type: application/json' \
  -d '{"name":"active_20s","rule":"last_seen(page_viewed) > now - 20s"}' > /dev/null
echo "fill (every event stamped now):"
$BIN/uss-loadtest --url $url --batch 1000 --connections 4 --users $USERS --zipf 0 --spread-days 0 --probe-rate 0 --events $((USERS*4)) 2>/dev/null | grep -E "throughput"
echo "active_20s $(members); other load for 40 s, while they leave:"
$BIN/uss-loadtest --url $url --batch 1 --connections 64 --rate $RATE --users 100000 --probe-rate 0 --duration 40s 2>/dev/null | grep -E "throughput|latency"
echo "active_20s $(members) after; timer lag:"
curl -s $url/metrics | grep -E "uss_timer_lag_seconds_(bucket|count|sum)"
