#!/usr/bin/env bash
# Backfill time with every user in memory, release build: fills USERS users (uniform,
# two events each), then creates a segment every user is in and one nobody is in, and
# prints how long each took to become ready (status polled every 50 ms).
#   USERS=200000 loadtest/backfill.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release; USERS=${USERS:-200000}; PORT=7303; url=http://127.0.0.1:$PORT
D=$(mktemp -d /tmp/uss-backfill.XXXX)
$BIN/uss serve --dev-clock --data-dir "$D" --bind 127.0.0.1:$PORT > "$D.log" 2>&1 &
SP=$!
trap 'kill "$SP" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$D"' EXIT
for _ in $(seq 1 100); do curl -sf $url/readyz > /dev/null && break; sleep 0.1; done
$BIN/uss-loadtest --url $url --batch 1000 --connections 8 --users "$USERS" --zipf 0 \
  --probe-rate 0 --events $((USERS * 2)) 2>/dev/null | grep -E "throughput"
sleep 3
now_ms() { date +%s%3N; }
segment() { # name rule -> id
  curl -s -XPOST "$url/api/v1/segments" -H 'content-type: application/json' \
    -d "{\"name\":\"$1\",\"rule\":\"$2\"}" | sed -E 's/.*"id":([0-9]+).*/\1/'
}
wait_ready() { until curl -s "$url/api/v1/segments/$1" | grep -q '"status":"ready"'; do sleep 0.05; done; }
echo "resident users $(curl -s $url/metrics | awk '$1 == "uss_resident_users" { print $2 }')"
began=$(now_ms); id=$(segment everyone 'count(page_viewed) >= 0'); wait_ready "$id"
echo "backfill, every user a member: $(( $(now_ms) - began )) ms ($(curl -s $url/api/v1/segments/$id/count))"
began=$(now_ms); id=$(segment nobody 'count(page_viewed) >= 1000000'); wait_ready "$id"
echo "backfill, no member: $(( $(now_ms) - began )) ms"
