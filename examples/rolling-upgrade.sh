#!/usr/bin/env bash
# Restarts every node of the local three-node cluster (examples/start-local-cluster.sh) in turn — as an
# upgrade to a new binary would — waiting after each until it is back in every ISR (no under-replicated
# partition, as `cluster status --json` reports) before touching the next. Clients keep working
# throughout. Rebuild first to roll out a new binary: cargo build --release -p chronik-server
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
B=target/release/chronik-server
CFG=examples/cluster-local-3node-node1.toml
WAIT_S=${WAIT_S:-120}

under_replicated() {
  $B cluster status --json --config "$CFG" 2>/dev/null \
    | python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(1 for p in s["partitions"] if sorted(p["isr"]) != sorted(p["replicas"]) or p["leader"] < 0))' 2>/dev/null \
    || echo unknown
}

# Whether node $1 serves again: its admin API says "ok" (registered, caught up with the metadata).
serving() {
  curl -fsS "http://127.0.0.1:$((10000 + $1))/admin/health" 2>/dev/null | grep -q '"status":"ok"'
}

for i in 1 2 3; do
  pid=$(cat "data/node-$i.pid")
  echo "node $i: stopping pid $pid"
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  $B start --config "examples/cluster-local-3node-node$i.toml" >>"data/node-$i.log" 2>&1 &
  echo $! >"data/node-$i.pid"
  deadline=$((SECONDS + WAIT_S))
  while :; do
    n=$(serving "$i" && under_replicated || echo "not serving yet")
    [[ $n == 0 ]] && { echo "node $i: serving and back in every ISR"; break; }
    (( SECONDS < deadline )) || { echo "node $i: still $n partitions under-replicated after ${WAIT_S}s" >&2; exit 1; }
    sleep 0.5
  done
done
echo "rolling restart done"
