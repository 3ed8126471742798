"""Acknowledged writes survive leader failures.

Idempotent acks=all producers write to a 6-partition RF 3 topic (checker.py) while the
test kill -9s a broker that leads some partitions (not the Raft leader), restarts it,
then kill -9s the Raft leader and restarts it. Afterwards every partition is read back
and checked record by record (checker.check); any violation fails the test.
"""

import time

from chronik_cluster import PARTITION_FAILOVER_TIMEOUT_S, RAFT_FAILOVER_TIMEOUT_S
from checker import create_rf3_topic, read_back_violations, start_load, wait_new_leaders

TOPIC = "faults"
# Records each phase must see acknowledged (on top of the previous phases) before the next fault.
ACKED_PER_PHASE = 2_000


def test_acked_writes_survive_partition_and_raft_leader_kills(cluster):
    create_rf3_topic(cluster, TOPIC)
    load = start_load(cluster, TOPIC)
    timings = {}
    try:
        load.wait_more_acked(ACKED_PER_PHASE, "before any fault")

        # 1. kill -9 a broker that leads partitions but not the metadata (Raft) group.
        raft_leader, _ = cluster.wait_agreed_leader()
        parts = cluster.partitions(TOPIC)
        victim = next(p["leader"] for p in parts.values() if p["leader"] != raft_leader)
        led = sorted(i for i, p in parts.items() if p["leader"] == victim)
        print(f"[cluster-faults] kill -9 node {victim} (leads partitions {led}); Raft leader {raft_leader}")
        cluster.kill9(victim)
        timings["partition_failover_s"] = wait_new_leaders(cluster, TOPIC, victim, f"new leaders for {led}")
        load.wait_more_acked(ACKED_PER_PHASE, f"after killing partition leader {victim}")
        cluster.restart(victim)
        t0 = time.monotonic()
        cluster.wait_full_isr(TOPIC)
        timings["isr_rejoin_s"] = time.monotonic() - t0
        load.wait_more_acked(ACKED_PER_PHASE, f"after restarting {victim}")

        # 2. kill -9 the Raft leader (the controller).
        raft_leader, term = cluster.wait_agreed_leader()
        print(f"[cluster-faults] kill -9 Raft leader {raft_leader} (term {term})")
        t0 = time.monotonic()
        cluster.kill9(raft_leader)
        survivors = [i for i in cluster.nodes if i != raft_leader]
        new_leader, new_term = cluster.wait_agreed_leader(survivors, RAFT_FAILOVER_TIMEOUT_S)
        timings["raft_failover_s"] = time.monotonic() - t0
        assert new_leader != raft_leader and new_term > term
        timings["partition_failover_after_raft_kill_s"] = wait_new_leaders(
            cluster, TOPIC, raft_leader, "new partition leaders after the Raft leader's kill")
        load.wait_more_acked(ACKED_PER_PHASE, f"after killing Raft leader {raft_leader}")
        cluster.restart(raft_leader)
        cluster.wait_agreed_leader()
        cluster.wait_full_isr(TOPIC)
        load.wait_more_acked(ACKED_PER_PHASE, "with every node back")
    finally:
        load.stop()
    print(f"[cluster-faults] timings {({k: round(v, 1) for k, v in timings.items()})}")
    violations = read_back_violations(cluster.bootstrap, load, TOPIC)
    assert not violations, "\n".join(violations)
    assert timings["partition_failover_s"] <= PARTITION_FAILOVER_TIMEOUT_S
