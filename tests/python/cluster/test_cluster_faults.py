"""Acknowledged writes survive leader failures (issue 3).

Several idempotent confluent-kafka producers (acks=all, retries on) write unique
values `p<n>-<seq>` to a 6-partition RF 3 topic. Meanwhile the test kill -9s a
broker that leads some partitions (not the Raft leader), restarts it, then
kill -9s the Raft leader and restarts it. Afterwards every partition is read to
its end and checked:

- every acknowledged value is present, at its acknowledged (partition, offset);
- no offset holds two values (no two acknowledgements name the same offset, and
  the log has each offset once);
- no value appears twice in the log;
- each producer's values keep their order within a partition.

The counts are printed; any violation fails the test.
"""

import collections
import time

from confluent_kafka.admin import AdminClient, NewTopic

from chronik_cluster import PARTITION_FAILOVER_TIMEOUT_S, RAFT_FAILOVER_TIMEOUT_S
# One load and one value encoding for every kill -9 checker.
from crash_load import ProducerLoad, parse_value, read_whole_topic

TOPIC = "faults"
PARTITIONS = 6
PRODUCERS = 3
# Records each phase must see acknowledged (on top of the previous phases) before the next fault.
ACKED_PER_PHASE = 2_000
# librdkafka gives up on a record after this long; longer than any failover we tolerate.
MESSAGE_TIMEOUT_MS = 180_000
IDEMPOTENT_PRODUCER = {"enable.idempotence": True, "acks": "all", "retries": 1_000_000,
                       "message.timeout.ms": MESSAGE_TIMEOUT_MS, "linger.ms": 5}
# Throttle: a short pause every PAUSE_EVERY records keeps the load spread over the faults.
PAUSE_EVERY = 50
PAUSE_S = 0.005


def create_rf3_topic(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    fs = admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=3)],
                             operation_timeout=30)
    fs[TOPIC].result(timeout=30)
    return cluster.wait_full_isr(TOPIC, timeout_s=30)


def wait_new_leaders(cluster, killed, what):
    """Until no partition names `killed` as leader; returns the seconds it took."""
    t0 = time.monotonic()
    cluster.wait_partitions(TOPIC, lambda p: p["leader"] not in (killed, None, -1),
                            PARTITION_FAILOVER_TIMEOUT_S, what)
    return time.monotonic() - t0


def check(load, logs):
    """All the invariants of the module docstring; prints the counts, returns the violations."""
    acked = dict(load.log.acked)
    violations = []

    # No offset holds two values: in what was acknowledged ...
    by_position = collections.defaultdict(list)
    for v, po in acked.items():
        by_position[po].append(v)
    double_acked = {po: vs for po, vs in by_position.items() if len(vs) > 1}
    # ... and in what the log returns.
    double_offsets = []
    for p, recs in logs.items():
        offsets = [o for o, _ in recs]
        if len(offsets) != len(set(offsets)) or offsets != sorted(offsets):
            double_offsets.append(p)
    positions = {p: dict(recs) for p, recs in logs.items()}

    missing = [(v, po) for v, po in acked.items() if positions.get(po[0], {}).get(po[1]) != v]
    occurrences = collections.Counter(v for recs in logs.values() for _, v in recs)
    duplicates = [v for v, c in occurrences.items() if c > 1]

    # Order: per producer and partition, offsets grow with the sequence number.
    out_of_order = []
    last = {}
    for p, recs in sorted(logs.items()):
        for o, v in recs:
            n, seq = parse_value(v)
            prev = last.get((n, p))
            if prev is not None and prev[0] >= seq:
                out_of_order.append((p, prev, (seq, o)))
            last[(n, p)] = (seq, o)

    total = sum(len(r) for r in logs.values())
    print(f"[cluster-faults] sent={sum(load.sent)} acked={len(acked)} log_records={total} "
          f"missing_at_acked_offset={len(missing)} offsets_acked_twice={len(double_acked)} "
          f"partitions_with_repeated_offsets={len(double_offsets)} duplicate_values={len(duplicates)} "
          f"out_of_order={len(out_of_order)} delivery_errors={len(load.log.errors)} "
          f"unflushed={sum(load.unflushed)} unacked_in_log={total - len(set(occurrences) & set(acked))}")
    if missing:
        violations.append(f"{len(missing)} acked values not at their acked offset, e.g. {missing[:5]}")
    if double_acked:
        violations.append(f"{len(double_acked)} offsets acknowledged to two values, e.g. {list(double_acked.items())[:3]}")
    if double_offsets:
        violations.append(f"partitions {double_offsets} return an offset twice or out of order")
    if duplicates:
        violations.append(f"{len(duplicates)} values stored twice, e.g. {duplicates[:5]}")
    if out_of_order:
        violations.append(f"{len(out_of_order)} order violations, e.g. {out_of_order[:3]}")
    return violations


def test_acked_writes_survive_partition_and_raft_leader_kills(cluster):
    create_rf3_topic(cluster)
    load = ProducerLoad(cluster.bootstrap, TOPIC, PARTITIONS, IDEMPOTENT_PRODUCER, producers=PRODUCERS,
                        pause_every=PAUSE_EVERY, pause_s=PAUSE_S).start()
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
        timings["partition_failover_s"] = wait_new_leaders(cluster, victim, f"new leaders for {led}")
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
            cluster, raft_leader, "new partition leaders after the Raft leader's kill")
        load.wait_more_acked(ACKED_PER_PHASE, f"after killing Raft leader {raft_leader}")
        cluster.restart(raft_leader)
        cluster.wait_agreed_leader()
        cluster.wait_full_isr(TOPIC)
        load.wait_more_acked(ACKED_PER_PHASE, "with every node back")
    finally:
        load.stop()
    print(f"[cluster-faults] timings {({k: round(v, 1) for k, v in timings.items()})}")
    assert not load.fatal, f"fatal producer errors: {load.fatal}"

    logs, _ = read_whole_topic(cluster.bootstrap, TOPIC, PARTITIONS)
    violations = check(load, logs)
    assert not violations, "\n".join(violations)
    assert timings["partition_failover_s"] <= PARTITION_FAILOVER_TIMEOUT_S
