"""The rebalancer plans by bytes when partition sizes differ: two large partitions of six on three
nodes, a fourth node added. The dry run lists each move's partition size and the bytes to move once
every node has reported its sizes, and after the rebalance the large replicas are spread over all four
nodes (by replica count alone the new node would take only small ones: the smallest move first)."""

import collections
import time

from confluent_kafka import Producer

from chronik_cluster import cli_json
from checker import create_rf3_topic

TOPIC = "sizes"
LARGE = (0, 1)
LARGE_RECORDS = 2_000
SMALL_RECORDS = 20
RECORD_BYTES = 1_000
SIZES_KNOWN_WITHIN_S = 30.0  # a report every 5 heartbeats (1 s) at most; ample
BALANCED_WITHIN_S = 120.0


def produce(cluster):
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 20})
    value = b"x" * RECORD_BYTES
    for partition in range(6):
        for _ in range(LARGE_RECORDS if partition in LARGE else SMALL_RECORDS):
            while True:
                try:
                    p.produce(TOPIC, value, partition=partition)
                    break
                except BufferError:
                    p.poll(0.1)
            p.poll(0)
    assert p.flush(60) == 0, "records left unsent"


def large_replicas(status):
    """How many replicas of a large partition each node holds (targets of moves in progress included)."""
    held = collections.Counter({n: 0 for n in (1, 2, 3, 4)})
    for p in status["partitions"]:
        if p["topic"] == TOPIC and p["partition"] in LARGE:
            held.update(set(p["replicas"]) | set(p.get("adding_replicas") or []))
    return held


def test_uneven_sizes_spread_by_bytes_on_three_to_four_nodes(cluster):
    # Balanced by count: every node holds six replicas and two preferred leaderships; the two
    # large partitions have all three nodes, so each old node holds two large replicas.
    create_rf3_topic(cluster, TOPIC, assignment=[[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 3, 2], [2, 1, 3], [3, 2, 1]])
    produce(cluster)
    leader, _ = cluster.wait_agreed_leader()
    cfg = cluster.nodes[leader].config_path
    node4 = cluster.new_node(4)
    node4.spawn()
    cli_json("add-node", *cluster.add_args(4), "--config", cfg)
    node4.wait_status("ok")

    # Brokers report sizes to the controller every few heartbeats: wait until the records written
    # above show in the plan (or the plan is already carried out).
    deadline = time.monotonic() + SIZES_KNOWN_WITHIN_S
    plan = cli_json("rebalance", "--dry-run", "--config", cfg)
    while not (plan.get("sizes_known") and (plan["bytes_to_move"] > 0 or not plan["moves"])) and time.monotonic() < deadline:
        time.sleep(0.5)
        plan = cli_json("rebalance", "--dry-run", "--config", cfg)
    print(f"[sizes] dry run: {plan['message']}, bytes_to_move {plan.get('bytes_to_move')}, "
          f"moves {[(m['kind'], m['partition'], m.get('size_bytes')) for m in plan['moves']]}")
    assert plan.get("sizes_known"), f"sizes not known within {SIZES_KNOWN_WITHIN_S:.0f}s: {plan}"
    replica_moves = [m for m in plan["moves"] if m["kind"] == "replica"]
    assert all("size_bytes" in m for m in plan["moves"]), plan
    assert plan["bytes_to_move"] == sum(m["size_bytes"] for m in replica_moves), plan
    # The plan is made from the placement as it is (moves already started count as done): it may
    # be partly under way, but what is left of it, or what is already moving, takes a large replica.
    large_bytes = LARGE_RECORDS * RECORD_BYTES
    status = cluster.leader_status()
    assert (any(m["partition"] in LARGE and m["size_bytes"] >= large_bytes for m in replica_moves)
            or large_replicas(status)[4] > 0), (plan, status["partitions"])

    deadline = time.monotonic() + BALANCED_WITHIN_S
    held = moving = None
    while time.monotonic() < deadline:
        status = cluster.leader_status()
        moving = any(p.get("adding_replicas") or p.get("removing_replicas") for p in status["partitions"])
        held = large_replicas(status)
        if not moving and max(held.values()) - min(held.values()) <= 1:
            break
        time.sleep(0.5)
    print(f"[sizes] large replicas per node after the rebalance: {dict(held)}")
    assert not moving and max(held.values()) - min(held.values()) <= 1, (held, status["partitions"])
