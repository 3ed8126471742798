"""A consumer group keeps consuming through a broker kill and resumes from committed offsets.

Consumer A (confluent-kafka, manual commits) reads part of a RF 3 topic and
commits; the test kill -9s the group's coordinator and writes more records; A keeps
consuming to the end
(after the group moves to a new coordinator, A must not go back below its
committed offsets) and commits again once a coordinator answers. After A leaves,
more records are written and the killed node restarts; consumer B in the same
group must start exactly at A's committed offsets: every new record, none of the old.
"""

import time

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from chronik_cluster import RAFT_FAILOVER_TIMEOUT_S
from kafka_helpers import DeliveryLog, Deadline, make_producer, produce_all

TOPIC = "group-faults"
GROUP = "cluster-group"
PARTITIONS = 3
FIRST_BATCH = 3_000
CONSUMED_BEFORE_KILL = 1_000
MIDDLE_BATCH = 1_000
SECOND_BATCH = 600
CONSUME_TIMEOUT_S = 120.0
COMMIT_TIMEOUT_S = 60.0


def consumer(bootstrap, name):
    return Consumer({
        "bootstrap.servers": bootstrap, "group.id": GROUP, "client.id": name,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000, "heartbeat.interval.ms": 500,
        "enable.partition.eof": False,
    })


def produce(bootstrap, values):
    """Produces `values`; returns {partition: end offset} of what was acknowledged."""
    log = DeliveryLog()
    producer = make_producer(bootstrap, **{"enable.idempotence": True})
    produce_all(producer, TOPIC, values, log)
    assert not log.errors, f"delivery errors: {log.errors[:5]}"
    ends = {}
    for p, o in log.acked.values():
        if o is not None:  # librdkafka's implicit ack: a later offset of the partition counts
            ends[p] = max(ends.get(p, 0), o + 1)
    return ends


class Reader:
    """A consumer plus everything it was handed, in order: [(partition, offset, value)]."""

    def __init__(self, c):
        self.c = c
        self.deliveries = []
        self.next = {}  # partition -> offset after the last delivery

    def poll_once(self):
        for m in self.c.consume(num_messages=500, timeout=0.5):
            if m.error() is not None:
                # Coordinator and leader moves surface as retriable errors; librdkafka recovers.
                assert not m.error().fatal(), f"consume error: {m.error()}"
                continue
            self.deliveries.append((m.partition(), m.offset(), m.value()))
            self.next[m.partition()] = m.offset() + 1

    def until(self, done, what):
        deadline = Deadline(CONSUME_TIMEOUT_S, what)
        while not done():
            deadline.check(f"(next offsets {self.next})")
            self.poll_once()

    def values(self):
        return {v for _, _, v in self.deliveries}


def commit_until_accepted(c, offsets, what):
    """Commits {partition: offset} explicitly, retrying while no coordinator answers."""
    tps = [TopicPartition(TOPIC, p, o) for p, o in sorted(offsets.items())]
    deadline = Deadline(COMMIT_TIMEOUT_S, what)
    while True:
        try:
            return {tp.partition: tp.offset for tp in c.commit(offsets=tps, asynchronous=False)}
        except KafkaException as e:
            deadline.check(f"(last error {e})")
            c.poll(0.5)  # serves the rebalance and the coordinator look-up while we wait


def coordinator_of(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    d = admin.describe_consumer_groups([GROUP], request_timeout=10)[GROUP].result(timeout=15)
    return d.coordinator.id


def test_group_consumes_through_a_coordinator_kill_and_resumes_from_commits(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=3)])[TOPIC].result(30)
    cluster.wait_full_isr(TOPIC, timeout_s=30)
    first = [f"first-{i:06d}".encode() for i in range(FIRST_BATCH)]
    ends = produce(cluster.bootstrap, first)

    a = Reader(consumer(cluster.bootstrap, "member-a"))
    try:
        a.c.subscribe([TOPIC])
        a.until(lambda: len(a.values()) >= CONSUMED_BEFORE_KILL, "consumer A before the kill")
        before = commit_until_accepted(a.c, dict(a.next), "A's commit before the kill")
        victim = coordinator_of(cluster.bootstrap)
        print(f"[cluster-group] A committed {before}; coordinator is node {victim}; kill -9")
        t0 = time.monotonic()
        cluster.kill9(victim)
        after_kill = len(a.deliveries)
        middle = [f"middle-{i:06d}".encode() for i in range(MIDDLE_BATCH)]
        for p, end in produce(cluster.bootstrap, middle).items():
            ends[p] = max(ends.get(p, 0), end)
        a.until(lambda: all(a.next.get(p, 0) >= end for p, end in ends.items()), "consumer A to the end through the kill")
        final = commit_until_accepted(a.c, {p: ends.get(p, 0) for p in range(PARTITIONS)}, "A's commit after the kill")
        print(f"[cluster-group] A read {len(a.deliveries)} deliveries, committed {final} {time.monotonic() - t0:.1f}s after the kill")
        assert a.values() == set(first) | set(middle), "A missed records"
        # Going back below a committed offset means the new coordinator lost the commit.
        rewinds = [(p, o) for p, o, _ in a.deliveries[after_kill:] if o < before.get(p, 0)]
        assert not rewinds, (f"after the coordinator kill A re-read {len(rewinds)} records below its committed "
                             f"offsets {before}, e.g. {rewinds[:5]}")
    finally:
        a.c.close()  # also on failure, so it stops reconnecting to the stopped cluster

    second = [f"second-{i:06d}".encode() for i in range(SECOND_BATCH)]
    produce(cluster.bootstrap, second)
    cluster.restart(victim)
    cluster.wait_agreed_leader(timeout_s=RAFT_FAILOVER_TIMEOUT_S)

    b = Reader(consumer(cluster.bootstrap, "member-b"))
    try:
        got = {tp.partition: tp.offset for tp in b.c.committed(
            [TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=30)}
        assert got == final, f"committed offsets after the coordinator kill and restart {got}, A committed {final}"
        b.c.subscribe([TOPIC])
        b.until(lambda: len(b.values()) >= SECOND_BATCH, "consumer B after the restart")
        settle = time.monotonic() + 1.0  # anything older than the commits would arrive right behind
        while time.monotonic() < settle:
            b.poll_once()
        old = [(p, o) for p, o, v in b.deliveries if not v.startswith(b"second-")]
        assert not old, f"B re-read {len(old)} records below the committed offsets, e.g. {old[:3]}"
        assert b.values() == set(second), "B did not read exactly the new records"
        for p in range(PARTITIONS):
            first_offset = min((o for pp, o, _ in b.deliveries if pp == p), default=None)
            assert first_offset in (None, final[p]), f"B started partition {p} at {first_offset}, committed {final[p]}"
    finally:
        b.c.close()
