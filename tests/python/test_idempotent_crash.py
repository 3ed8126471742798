"""kill -9 under an idempotent load: retries after the restart write nothing twice.

Two producers with enable.idempotence=true (and so unlimited retries, acks=all)
write through a SIGKILL and restart of the broker. The broker must rebuild each
producer's sequence state from its log, so a batch written before the kill and
retried after it is answered as a duplicate, not appended again: after the run no
value appears twice in the log, and every acknowledged value is at its acked offset.
"""

import pytest

from crash_load import check_acked_records, load_across_kill9
from kafka_helpers import create_topic

TOPIC = "idempotent-crash"
PARTITIONS = 3

IDEMPOTENT_PRODUCER = {
    "enable.idempotence": True,
    "acks": "all",
    "max.in.flight.requests.per.connection": 5,
    # Long enough to ride out the restart; retries are unlimited under idempotence.
    "message.timeout.ms": 120_000,
    "retry.backoff.ms": 100,
    # No lingering: requests are nearly always in flight, so the kill lands on some.
    "linger.ms": 0,
}


@pytest.mark.timeout(600)
def test_idempotent_kill9_no_duplicates(broker):
    create_topic(broker.bootstrap, TOPIC, partitions=PARTITIONS)
    load, logs, _ = load_across_kill9(broker, TOPIC, PARTITIONS, IDEMPOTENT_PRODUCER, "idempotent")
    _, occurrences, all_dups = check_acked_records(load, logs)
    print(f"[idempotent] distinct values in log={len(occurrences)} duplicates={len(all_dups)} "
          f"unflushed={sum(load.unflushed)} delivery_errors={len(load.log.errors)}")
    assert not all_dups, f"{len(all_dups)} values written twice, e.g. {sorted(all_dups)[:5]}"
    # With unlimited retries nothing may end in a delivery error or stay unflushed.
    assert not load.log.errors, f"delivery errors: {load.log.errors[:5]}"
    assert sum(load.unflushed) == 0
    assert len(load.log.acked) == sum(load.sent)
