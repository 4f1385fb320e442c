#!/usr/bin/env bash
# Measures growing a cluster from 3 nodes to 4 (issue 7's handoff figure), release build:
# starts n1..n3 on 127.0.0.1:7201-7203, loads USERS users through n1 with uss-loadtest,
# starts n4 with the 4-node list, restarts n1..n3 one at a time with it, and prints each
# node's "shards handed over" line (users, keys, ms) and how long each restart took
# until /readyz. Data under /tmp/uss-grow-bench.
#   USERS=100000 EVENTS_SECONDS=20 loadtest/grow.sh
set -euo pipefail
cd "$(dirname "$0")/.."
users=${USERS:-100000}
seconds=${EVENTS_SECONDS:-20}
base=/tmp/uss-grow-bench
rm -rf "$base" && mkdir -p "$base"
config() {
  echo "[cluster]"
  echo "nodes = ["
  for i in $(seq 1 "$1"); do echo "  { id = \"n$i\", addr = \"127.0.0.1:720$i\" },"; done
  echo "]"
}
config 3 > "$base/three.toml"
config 4 > "$base/four.toml"
declare -A pids
start() { # node config
  target/release/uss serve --config "$2" --node-id "n$1" --bind "127.0.0.1:720$1" \
    --data-dir "$base/n$1" --dev-clock >> "$base/n$1.log" 2>&1 &
  pids[$1]=$!
}
ready() {
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:720$1/readyz" > /dev/null && return 0
    sleep 0.1
  done
  echo "n$1 did not become ready" >&2
  return 1
}
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for i in 1 2 3; do start "$i" "$base/three.toml"; done
for i in 1 2 3; do ready "$i"; done
target/release/uss-loadtest --url http://127.0.0.1:7201 --batch 1000 --connections 4 \
  --users "$users" --zipf 0 --probe-rate 0 --duration "${seconds}s" | grep -E 'events |throughput'
start 4 "$base/four.toml"
ready 4
for i in 1 2 3; do
  kill -TERM "${pids[$i]}"
  wait "${pids[$i]}" || true
  began=$(date +%s%N)
  start "$i" "$base/four.toml"
  ready "$i"
  ms=$(( ($(date +%s%N) - began) / 1000000 ))
  line=$(grep 'shards handed over' "$base/n$i.log" | tail -1 | sed -e 's/\x1b\[[0-9;]*m//g' | sed -e 's/.*INFO //')
  echo "n$i: ready ${ms} ms after restart; $line"
done
grep 'shards taken over' "$base/n4.log" | sed -e 's/\x1b\[[0-9;]*m//g' | sed -e 's/.*INFO //'
