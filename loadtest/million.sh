#!/usr/bin/env bash
# Issue 4's figures on one node, release build: fills USERS users (uniform, a few events
# each, the five fixture segments), then prints RSS per resident user, the data dir's
# size, the recovery time after kill -9 right after the load (journal replay included),
# the backfill time of a segment every user is in and of one nobody is in, and the time
# for every user to flip on time alone (the dev clock moved past every window at once).
# FLIP_LOAD=N also runs N single events/s (128 connections, 40 s) from 2 s before the
# flips, and prints that load's latencies: the flips must not stall ingestion.
#   USERS=1000000 FILL_SECONDS=60 MAX_RESIDENT=1000000 loadtest/million.sh
set -euo pipefail
cd "$(dirname "$0")/.."
users=${USERS:-1000000}
seconds=${FILL_SECONDS:-60}
resident=${MAX_RESIDENT:-1000000}
base=/tmp/uss-million-bench
url=http://127.0.0.1:7301
rm -rf "$base" && mkdir -p "$base"
printf '[actors]\nmax_resident_users = %s\n' "$resident" > "$base/uss.toml"
pid=
start() {
  target/release/uss serve --config "$base/uss.toml" --bind 127.0.0.1:7301 \
    --data-dir "$base/data" --dev-clock >> "$base/node.log" 2>&1 &
  pid=$!
}
ready() {
  for _ in $(seq 1200); do
    curl -sf "$url/readyz" > /dev/null && return 0
    sleep 0.05
  done
  echo "node did not become ready" >&2
  return 1
}
metric() { curl -s "$url/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }
now_ms() { date +%s%3N; }
wait_ready_segment() { # id
  # Polled twice a second: the poll's own cost stays out of the figure.
  until curl -s "$url/api/v1/segments/$1" | grep -q '"status":"ready"'; do sleep 0.5; done
}
segment() { # name rule -> id
  curl -s -XPOST "$url/api/v1/segments" -H 'content-type: application/json' \
    -d "{\"name\":\"$1\",\"rule\":\"$2\"}" | sed -E 's/.*"id":([0-9]+).*/\1/'
}
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true' EXIT

start && ready
load() { # seconds
  target/release/uss-loadtest --url "$url" --batch 1000 --connections 8 --users "$users" \
    --zipf 0 --probe-rate 0 --duration "$1s" | grep -E 'events |throughput'
}
load "$seconds"
sleep "${SETTLE_SECONDS:-10}"
rss_kib=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
count=$(metric uss_resident_users)
echo "resident users $count, RSS $(( rss_kib / 1024 )) MiB, $(( rss_kib * 1024 / (count > 0 ? count : 1) )) bytes per resident user"
echo "data dir $(du -sh "$base/data" | cut -f1)"
# Five more seconds of load, then kill -9 at once: the journal holds what no snapshot does.
load 5
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
began=$(now_ms); start && ready
echo "recovery after kill -9 right after a load: $(( $(now_ms) - began )) ms"
grep -o 'journal replayed.*' "$base/node.log" | tail -1 || true

began=$(now_ms); id=$(segment nobody 'count(page_viewed) >= 1000000'); wait_ready_segment "$id"
echo "backfill, no member: $(( $(now_ms) - began )) ms"
began=$(now_ms); id=$(segment everyone 'count(page_viewed) >= 0'); wait_ready_segment "$id"
echo "backfill, every user a member: $(( $(now_ms) - began )) ms ($(curl -s "$url/api/v1/segments/$id/count"))"

id=$(segment recent 'count(page_viewed, 90d) >= 1'); wait_ready_segment "$id"
members=$(curl -s "$url/api/v1/segments/$id/count")
clock=$(curl -s "$url/api/v1/admin/clock" | sed -E 's/.*"now":"([^"]+)".*/\1/')
later=$(date -u -d "$clock + 91 days" +%Y-%m-%dT%H:%M:%SZ)
flip_load=${FLIP_LOAD:-0}
if [ "$flip_load" -gt 0 ]; then
  target/release/uss-loadtest --url "$url" --batch 1 --connections 128 --users "$users" \
    --zipf 0 --probe-rate 0 --rate "$flip_load" --duration 40s > "$base/flip_load.txt" 2>&1 &
  load_pid=$!
  sleep 2
fi
began=$(now_ms)
curl -s -XPOST "$url/api/v1/admin/clock" -H 'content-type: application/json' -d "{\"now\":\"$later\"}" > /dev/null
echo "time-only flips of $members: every flip durable and pushed in $(( $(now_ms) - began )) ms ($(curl -s "$url/api/v1/segments/$id/count") after)"
if [ "$flip_load" -gt 0 ]; then
  wait "$load_pid"
  echo "load of $flip_load events/s from 2 s before the flips, for 40 s:"
  grep -E 'events |throughput|latency' "$base/flip_load.txt"
fi
