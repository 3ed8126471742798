"""kill -9 under load: acknowledged records and committed group offsets survive.

Two plain producers (acks=all, no retries, so nothing acked can also have been
written twice) write to a 3-partition topic; a consumer group consumes and commits;
the broker is killed with SIGKILL mid-load and restarted on the same data dir.
Every acknowledged record must be present once, at the offset its delivery report
named, in production order; the group must resume exactly from its commits.
"""

import pytest
from confluent_kafka import Consumer, TopicPartition

from crash_load import check_acked_records, load_across_kill9
from kafka_helpers import Deadline, create_topic

TOPIC = "crash-load"
PARTITIONS = 3
GROUP = "crash-group"
GROUP_RECORDS_BEFORE_COMMIT = 3_000
GROUP_TIMEOUT_S = 60.0

PLAIN_PRODUCER = {
    "acks": "all",
    "enable.idempotence": False,
    "retries": 0,
    "message.timeout.ms": 30_000,
    # No lingering: requests are nearly always in flight, so the kill lands on some.
    "linger.ms": 0,
}


def _group_consumer(bootstrap):
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": GROUP,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000,
    })


def _consume_and_commit(bootstrap):
    """Join the group, consume some records from every partition, commit, leave.

    Returns {partition: committed offset}."""
    consumer = _group_consumer(bootstrap)
    consumer.subscribe([TOPIC])
    seen = {}
    try:
        deadline = Deadline(GROUP_TIMEOUT_S, "group consumer to read every partition")
        while sum(seen.values()) < GROUP_RECORDS_BEFORE_COMMIT or len(seen) < PARTITIONS:
            deadline.check(f"(seen {seen})")
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                assert m.error() is None, f"consume error: {m.error()}"
                seen[m.partition()] = seen.get(m.partition(), 0) + 1
        committed = consumer.commit(asynchronous=False)
        result = {tp.partition: tp.offset for tp in committed}
        for tp in committed:
            assert tp.error is None, f"commit of partition {tp.partition} failed: {tp.error}"
    finally:
        consumer.close()
    print(f"[crash] group committed before kill: {result}")
    assert set(result) == set(range(PARTITIONS))
    assert all(o > 0 for o in result.values()), f"nothing committed: {result}"
    return result


def _check_group_resumes(bootstrap, committed_before, logs):
    consumer = _group_consumer(bootstrap)
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        after = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=30)}
        print(f"[crash] group committed after restart: {after}")
        assert after == committed_before, "committed offsets changed across the crash"

        consumer.subscribe([TOPIC])
        first = {}
        deadline = Deadline(GROUP_TIMEOUT_S, "group to resume on every partition")
        while len(first) < PARTITIONS:
            deadline.check(f"(first offsets so far {first})")
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                assert m.error() is None, f"consume error: {m.error()}"
                first.setdefault(m.partition(), (m.offset(), m.value()))
        for p, (offset, value) in first.items():
            assert offset == committed_before[p], \
                f"partition {p}: resumed at {offset}, committed {committed_before[p]}"
            assert dict(logs[p])[offset] == value
        print(f"[crash] group resumed at: { {p: o for p, (o, _) in first.items()} }")
    finally:
        consumer.close()


@pytest.mark.timeout(600)
def test_kill9_keeps_acked_records_and_commits(broker):
    create_topic(broker.bootstrap, TOPIC, partitions=PARTITIONS)
    load, logs, committed = load_across_kill9(
        broker, TOPIC, PARTITIONS, PLAIN_PRODUCER, "crash",
        during_load=lambda: _consume_and_commit(broker.bootstrap))
    check_acked_records(load, logs)
    _check_group_resumes(broker.bootstrap, committed, logs)
