#!/usr/bin/env bash
# Starts a three-node Chronik cluster on loopback (Kafka 9092-9094, wal 9291-9293, raft 5001-5003,
# admin 10001-10003), data under ./data/node-N, logs in ./data/node-N.log, and waits until every node
# reports the same metadata leader. Stop it with: kill $(cat data/node-*.pid)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -p chronik-server
mkdir -p data
for i in 1 2 3; do
  if [[ -f data/node-$i.pid ]] && kill -0 "$(cat data/node-$i.pid)" 2>/dev/null; then
    echo "node $i already running (pid $(cat data/node-$i.pid))"; continue
  fi
  target/release/chronik-server start --config "examples/cluster-local-3node-node$i.toml" >"data/node-$i.log" 2>&1 &
  echo $! >"data/node-$i.pid"
done
deadline=$((SECONDS + 60))
while :; do
  leaders=$(for i in 1 2 3; do curl -fsS "http://127.0.0.1:1000$i/admin/health" 2>/dev/null \
    | python3 -c 'import json,sys; h=json.load(sys.stdin); print(h["leader_id"], h["term"])' 2>/dev/null || echo down; done | sort -u)
  if [[ $(echo "$leaders" | wc -l) -eq 1 && "$leaders" != down && "$leaders" != None* ]]; then
    echo "cluster up: leader and term $leaders on all three nodes"; exit 0
  fi
  (( SECONDS < deadline )) || { echo "cluster did not agree on a leader within 60 s:"; echo "$leaders"; exit 1; }
  sleep 0.5
done
