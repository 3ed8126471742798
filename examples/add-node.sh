#!/usr/bin/env bash
# Adds a fourth node to the local three-node cluster of examples/start-local-cluster.sh (start that
# first): starts node 4 (examples/cluster-local-3node-node4.toml, Kafka 9095, admin 10004), adds it
# through the metadata leader with `cluster add-node --wait`, and shows the members. Node 4 joins as a
# learner: with four nodes the voter count stays three until a fifth arrives.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
B=target/release/chronik-server
[[ -x $B ]] || cargo build --release -p chronik-server
mkdir -p data
if [[ -f data/node-4.pid ]] && kill -0 "$(cat data/node-4.pid)" 2>/dev/null; then
  echo "node 4 already running (pid $(cat data/node-4.pid))"
else
  $B start --config examples/cluster-local-3node-node4.toml >data/node-4.log 2>&1 &
  echo $! >data/node-4.pid
fi
$B cluster add-node 4 --kafka localhost:9095 --wal localhost:9294 --raft localhost:5004 \
  --node-admin localhost:10004 --wait --config examples/cluster-local-3node-node1.toml
$B cluster members --config examples/cluster-local-3node-node1.toml
