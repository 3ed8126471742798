"""The record-by-record checker of the cluster fault tests, and the load they run.

Several idempotent confluent-kafka producers (acks=all, retries on) write unique
values `p<n>-<seq>` to a 6-partition RF 3 topic while a test injects faults.
Afterwards every partition is read to its end and `check` verifies:

- every acknowledged value is present, at its acknowledged (partition, offset); a value
  acknowledged without an offset is present in its partition (librdkafka's idempotent producer
  reports records as delivered with no offset when a later batch's acknowledgement proves that an
  earlier send whose answer was lost — a dropped connection at a leader move — was stored: its
  "implicit ack");
- no offset holds two values (no two acknowledgements name the same offset, and
  the log has each offset once);
- no value appears twice in the log;
- each producer's values keep their order within a partition.

The counts are printed; every violation is returned by name.
"""

import collections
import time

from confluent_kafka.admin import AdminClient, NewTopic

from chronik_cluster import PARTITION_FAILOVER_TIMEOUT_S
from crash_load import ProducerLoad, parse_value, read_whole_topic

PARTITIONS = 6
PRODUCERS = 3
# librdkafka gives up on a record after this long; longer than any failover we tolerate.
MESSAGE_TIMEOUT_MS = 180_000
IDEMPOTENT_PRODUCER = {"enable.idempotence": True, "acks": "all", "retries": 1_000_000,
                       "message.timeout.ms": MESSAGE_TIMEOUT_MS, "linger.ms": 5}
# Throttle: a short pause every PAUSE_EVERY records keeps the load spread over the faults.
PAUSE_EVERY = 50
PAUSE_S = 0.005


def create_rf3_topic(cluster, topic, assignment=None):
    """A topic of PARTITIONS partitions on 3 replicas (placed by the cluster, or by `assignment`:
    one replica list per partition, the first replica preferred leader); waits for the full ISR."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    if assignment is None:
        new = NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3)
    else:
        new = NewTopic(topic, num_partitions=len(assignment), replication_factor=-1, replica_assignment=assignment)
    fs = admin.create_topics([new], operation_timeout=30)
    fs[topic].result(timeout=30)
    return cluster.wait_full_isr(topic, timeout_s=30)


def start_load(cluster, topic):
    return ProducerLoad(cluster.bootstrap, topic, PARTITIONS, IDEMPOTENT_PRODUCER, producers=PRODUCERS,
                        pause_every=PAUSE_EVERY, pause_s=PAUSE_S).start()


def wait_new_leaders(cluster, topic, gone, what):
    """Until no partition names `gone` as leader; returns the seconds it took."""
    t0 = time.monotonic()
    cluster.wait_partitions(topic, lambda p: p["leader"] not in (gone, None, -1),
                            PARTITION_FAILOVER_TIMEOUT_S, what)
    return time.monotonic() - t0


def check(load, logs):
    """All the invariants of the module docstring; prints the counts, returns the violations."""
    acked = dict(load.log.acked)
    violations = []
    # Acknowledged without an offset (librdkafka's implicit ack, see the module docstring).
    unplaced = {v: po[0] for v, po in acked.items() if po[1] is None}

    # No offset holds two values: in what was acknowledged ...
    by_position = collections.defaultdict(list)
    for v, po in acked.items():
        if v not in unplaced:
            by_position[po].append(v)
    double_acked = {po: vs for po, vs in by_position.items() if len(vs) > 1}
    # ... and in what the log returns.
    double_offsets = []
    for p, recs in logs.items():
        offsets = [o for o, _ in recs]
        if len(offsets) != len(set(offsets)) or offsets != sorted(offsets):
            double_offsets.append(p)
    positions = {p: dict(recs) for p, recs in logs.items()}

    missing = [(v, po) for v, po in acked.items() if v not in unplaced and positions.get(po[0], {}).get(po[1]) != v]
    in_partition = {p: {v for _, v in recs} for p, recs in logs.items()}
    missing_unplaced = [(v, p) for v, p in unplaced.items() if v not in in_partition.get(p, set())]
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
          f"missing_at_acked_offset={len(missing)} acked_without_offset={len(unplaced)} "
          f"missing_acked_without_offset={len(missing_unplaced)} offsets_acked_twice={len(double_acked)} "
          f"partitions_with_repeated_offsets={len(double_offsets)} duplicate_values={len(duplicates)} "
          f"out_of_order={len(out_of_order)} delivery_errors={len(load.log.errors)} "
          f"unflushed={sum(load.unflushed)} unacked_in_log={total - len(set(occurrences) & set(acked))}")
    if missing:
        violations.append(f"{len(missing)} acked values not at their acked offset, e.g. {missing[:5]}")
    if missing_unplaced:
        violations.append(f"{len(missing_unplaced)} values acked without an offset are not in their partition, e.g. {missing_unplaced[:5]}")
    if double_acked:
        violations.append(f"{len(double_acked)} offsets acknowledged to two values, e.g. {list(double_acked.items())[:3]}")
    if double_offsets:
        violations.append(f"partitions {double_offsets} return an offset twice or out of order")
    if duplicates:
        violations.append(f"{len(duplicates)} values stored twice, e.g. {duplicates[:5]}")
    if out_of_order:
        violations.append(f"{len(out_of_order)} order violations, e.g. {out_of_order[:3]}")
    return violations


def read_back_violations(bootstrap, load, topic, partitions=PARTITIONS):
    """Stops nothing: `load` must be stopped. Checks it had no fatal error, reads `topic` back
    through `bootstrap` and returns `check`'s violations."""
    assert not load.fatal, f"fatal producer errors: {load.fatal}"
    logs, _ = read_whole_topic(bootstrap, topic, partitions)
    return check(load, logs)
