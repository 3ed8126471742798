"""A rolling restart (what an upgrade does) loses nothing and the consumer group reads everything.

Every node is stopped (SIGTERM) and started again in turn, the next only once the
restarted one is back in every ISR, while idempotent acks=all producers write (checker.py)
and a consumer group of two members reads. Afterwards every acknowledged record is at its
offset (checker.check) and the group has read every acknowledged record.
"""

import threading
import time

from confluent_kafka import Consumer

from checker import create_rf3_topic, read_back_violations, start_load
from crash_load import parse_value

TOPIC = "rolling"
GROUP = "rolling-group"
ACKED_STEP = 1_000
CONSUME_ALL_TIMEOUT_S = 120.0


class GroupReader:
    """Two members of one group, each in its own thread, recording every value handed to them."""

    def __init__(self, bootstrap, members=2):
        self.seen = set()
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(bootstrap, f"member-{i}"), daemon=True)
                        for i in range(members)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self, bootstrap, name):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "client.id": name,
                      "auto.offset.reset": "earliest", "enable.auto.commit": True,
                      "session.timeout.ms": 10_000, "heartbeat.interval.ms": 500})
        try:
            c.subscribe([TOPIC])
            while not self.stop_event.is_set():
                msg = c.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    continue  # transport errors while a node restarts; the client retries
                with self.lock:
                    self.seen.add(msg.value())
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(f"{name}: {e!r}")
        finally:
            c.close()

    def count_of(self, values):
        with self.lock:
            return sum(1 for v in values if v in self.seen)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=30)


def test_rolling_restart_under_load_with_a_consumer_group(cluster):
    create_rf3_topic(cluster, TOPIC)
    load = start_load(cluster, TOPIC)
    reader = GroupReader(cluster.bootstrap).start()
    timings = {}
    try:
        load.wait_more_acked(ACKED_STEP, "before the rolling restart")
        for i in sorted(cluster.nodes):
            t0 = time.monotonic()
            node = cluster.nodes[i]
            node.stop()
            node.start()
            node.wait_status("ok")  # registered and caught up with the metadata
            cluster.wait_agreed_leader()
            cluster.wait_full_isr(TOPIC)
            timings[f"node_{i}_back_s"] = round(time.monotonic() - t0, 1)
            load.wait_more_acked(ACKED_STEP, f"after restarting node {i}")
    finally:
        load.stop()
    print(f"[rolling] timings {timings}")
    assert not load.fatal, f"fatal producer errors: {load.fatal}"

    acked = list(load.log.acked)
    deadline = time.monotonic() + CONSUME_ALL_TIMEOUT_S
    while reader.count_of(acked) < len(acked) and time.monotonic() < deadline:
        time.sleep(0.5)
    reader.stop()
    read = reader.count_of(acked)
    print(f"[rolling] acked={len(acked)} read_by_the_group={read} errors={reader.errors}")
    missing = [v for v in acked if v not in reader.seen]
    assert not missing, f"the group never read {len(missing)} acked records, e.g. " \
                        f"{sorted(missing, key=parse_value)[:5]}"
    assert not reader.errors, reader.errors

    violations = read_back_violations(cluster.bootstrap, load, TOPIC)
    assert not violations, "\n".join(violations)
