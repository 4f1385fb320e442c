#!/usr/bin/env bash
# Starts a 3-node USS cluster from the release build on loopback ports 7101-7103 (fresh
# data dirs under /tmp/uss-cluster-bench), waits until every node is ready, runs
# uss-loadtest against node n1 with the flags given, then stops the nodes.
#   loadtest/cluster.sh --batch 1000 --connections 8 --users 100000 --duration 20s
# With NODES=1 it runs the same against one node (no [cluster] section), for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${NODES:-3}
base=/tmp/uss-cluster-bench
rm -rf "$base" && mkdir -p "$base"
config="$base/cluster.toml"
: > "$config"
if [ "$nodes" -gt 1 ]; then
  {
    echo "[cluster]"
    echo "nodes = ["
    for i in $(seq 1 "$nodes"); do echo "  { id = \"n$i\", addr = \"127.0.0.1:710$i\" },"; done
    echo "]"
  } >> "$config"
fi
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for i in $(seq 1 "$nodes"); do
  target/release/uss serve --config "$config" --node-id "n$i" --bind "127.0.0.1:710$i" \
    --data-dir "$base/n$i" --dev-clock > "$base/n$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$nodes"); do
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:710$i/readyz" > /dev/null && break
    sleep 0.2
  done
done
target/release/uss-loadtest --url http://127.0.0.1:7101 --server-pid "${pids[0]}" "$@"
for i in $(seq 1 "$nodes"); do
  echo "n$i: $(curl -s "http://127.0.0.1:710$i/metrics" | grep -E '^uss_cluster_requests_total|^uss_events_ingested_total' | tr '\n' ' ')"
done
