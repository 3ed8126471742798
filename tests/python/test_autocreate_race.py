"""Auto-creation under concurrency: many producers hit a topic that does not exist yet.

Each round starts PRODUCERS confluent-kafka producers at once on a new topic name, so
their Metadata requests race to auto-create it. Whatever the race, every acknowledged
record must then be readable at its acked offset. (A broker that opens the same
partition log twice and keeps the second, empty instance serves a Fetch from it, and
the acked records vanish from the consumer's view: kafka-python's test_end_to_end
showed this.)
"""

import threading

import pytest

from kafka_helpers import DeliveryLog, high_watermarks, make_producer, produce_all, read_partition_confluent

ROUNDS = 10
PRODUCERS = 6
RECORDS_PER_PRODUCER = 50


def _round(bootstrap, topic):
    log = DeliveryLog()
    barrier = threading.Barrier(PRODUCERS)
    errors = []

    def run(n):
        try:
            producer = make_producer(bootstrap, **{"allow.auto.create.topics": True, "linger.ms": 0})
            barrier.wait(timeout=30)
            produce_all(producer, topic, [f"{topic}-p{n}-{i}".encode() for i in range(RECORDS_PER_PRODUCER)],
                        log)
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(PRODUCERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, f"{topic}: producer failures {errors[:3]}"
    assert not log.errors, f"{topic}: delivery errors {log.errors[:3]}"
    return log


@pytest.mark.timeout(600)
def test_concurrent_autocreate_keeps_acked_records(broker):
    lost_rounds = []
    for r in range(ROUNDS):
        topic = f"autocreate-{r}"
        log = _round(broker.bootstrap, topic)
        partitions = sorted({p for p, _ in log.acked.values()})
        hws = high_watermarks(broker.bootstrap, topic, max(partitions) + 1)
        found = 0
        missing = []
        for p in partitions:
            records = dict(read_partition_confluent(broker.bootstrap, topic, p, hws[p])) if hws[p] else {}
            for value, (vp, offset) in log.acked.items():
                if vp == p:
                    if records.get(offset) == value:
                        found += 1
                    else:
                        missing.append((value, offset))
        print(f"[autocreate] {topic}: acked={len(log.acked)} found={found} high_watermarks={hws}")
        if missing:
            lost_rounds.append((topic, len(missing), missing[:3]))
    assert not lost_rounds, f"acked records not readable after concurrent auto-create: {lost_rounds}"
