"""Incremental fetch sessions (KIP-227) across partition leader changes.

A kafka-python consumer (it opens fetch sessions by default; librdkafka, inside confluent-kafka, never
does — it always sends session id 0 and epoch -1) reads all 6 partitions of an RF 3 topic while
idempotent acks=all producers write to it. The test kill -9s a broker that leads partitions (their
leadership moves to brokers where the consumer already holds a session: the partitions are added to
those sessions by incremental fetches), restarts it, and waits until the preferred-leader check gives
leadership back (the brokers that led meanwhile now answer NOT_LEADER_OR_FOLLOWER in incremental
responses and the consumer forgets the partitions there). Checked:

- the brokers hold sessions (`chronik_fetch_sessions` in /metrics) and the consumer's sessions advance
  through many incremental epochs;
- the consumer never judged a broker's fetch response invalid (kafka-python logs "invalid ... fetch
  response" when a full response misses a partition or an incremental one names a partition outside
  the session);
- every record in the log was read exactly once, in offset order, per partition, and every
  acknowledged record is in the log (checker.check).
"""

import logging
import threading
import time
import urllib.request

from kafka import KafkaConsumer, TopicPartition

from chronik_cluster import ISR_REJOIN_TIMEOUT_S
from checker import PARTITIONS, check, create_rf3_topic, start_load, wait_new_leaders
from crash_load import read_whole_topic

TOPIC = "sessions"
ACKED_PER_PHASE = 1_500
# The preferred-leader check runs every 5 s (leader_rebalance_interval_ms of the cluster tests).
PREFERRED_BACK_TIMEOUT_S = 60.0
# How long the consumer may take to reach the end of the log once the producers stopped.
CATCH_UP_TIMEOUT_S = 60.0
# Incremental round trips the consumer must have made over the test (one per fetch per broker).
INCREMENTAL_EPOCHS_MIN = 20


def metric(node, name):
    """The value of an unlabelled sample in a node's /metrics, or None when it is down."""
    try:
        with urllib.request.urlopen(f"http://{node.admin_addr}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing from node {node.node_id}'s /metrics")


class InvalidResponses(logging.Handler):
    """Collects kafka-python's complaints about fetch responses that break the session protocol."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.seen = []

    def emit(self, record):
        message = record.getMessage()
        if "invalid" in message and "fetch response" in message:
            self.seen.append(message)


class SessionConsumer:
    """A kafka-python consumer of every partition, reading in its own thread."""

    def __init__(self, bootstrap):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.error = None
        self.records = {p: [] for p in range(PARTITIONS)}  # partition -> [(offset, value)]
        self.max_epoch = 0
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      auto_offset_reset="earliest", fetch_max_wait_ms=200,
                                      metadata_max_age_ms=1000)
        self.consumer.assign([TopicPartition(TOPIC, p) for p in range(PARTITIONS)])
        self.thread = threading.Thread(target=self._run, name="session-consumer", daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.stop.is_set():
                try:
                    batch = self.consumer.poll(timeout_ms=200)
                except Exception as e:  # a transport error while a broker is gone; poll again
                    print(f"[fetch-sessions] poll: {e!r}")
                    time.sleep(0.2)
                    continue
                with self.lock:
                    for tp, msgs in batch.items():
                        self.records[tp.partition].extend((m.offset, m.value) for m in msgs)
                    for handler in self.consumer._fetcher._session_handlers.values():
                        self.max_epoch = max(self.max_epoch, handler.next_metadata.epoch)
        except BaseException as e:
            self.error = e
        finally:
            self.consumer.close()

    def count(self):
        with self.lock:
            return sum(len(r) for r in self.records.values())

    def wait_count(self, n, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        while self.count() < n:
            assert self.error is None, f"consumer failed: {self.error!r}"
            assert time.monotonic() < deadline, f"{what}: consumer read {self.count()} of {n}"
            time.sleep(0.2)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "consumer thread did not stop"


def test_fetch_sessions_follow_leader_changes(cluster):
    create_rf3_topic(cluster, TOPIC)
    invalid = InvalidResponses()
    logging.getLogger("kafka.consumer.fetcher").addHandler(invalid)
    load = start_load(cluster, TOPIC)
    consumer = SessionConsumer(cluster.bootstrap)
    try:
        load.wait_more_acked(ACKED_PER_PHASE, "before any leader change")
        consumer.wait_count(ACKED_PER_PHASE // 2, 60, "before any leader change")

        parts = cluster.partitions(TOPIC)
        leaders = sorted({p["leader"] for p in parts.values()})
        sessions = {i: metric(cluster.nodes[i], "chronik_fetch_sessions") for i in leaders}
        print(f"[fetch-sessions] partition leaders {leaders}; open fetch sessions {sessions}")
        assert all(n is not None and n >= 1 for n in sessions.values()), \
            f"a partition leader holds no fetch session: {sessions}"

        # 1. kill -9 a partition leader that is not the metadata leader.
        raft_leader, _ = cluster.wait_agreed_leader()
        victim = next(p["leader"] for p in parts.values() if p["leader"] != raft_leader)
        led = sorted(i for i, p in parts.items() if p["leader"] == victim)
        print(f"[fetch-sessions] kill -9 node {victim} (leads {led})")
        cluster.kill9(victim)
        wait_new_leaders(cluster, TOPIC, victim, f"new leaders for {led}")
        before = consumer.count()
        load.wait_more_acked(ACKED_PER_PHASE, f"after killing {victim}")
        consumer.wait_count(before + ACKED_PER_PHASE // 2, 60, f"after killing {victim}")

        # 2. Restart it; the preferred-leader check moves leadership back from live brokers.
        cluster.restart(victim)
        cluster.wait_full_isr(TOPIC, ISR_REJOIN_TIMEOUT_S)
        back = cluster.wait_partitions(TOPIC, lambda p: p["leader"] == p["replicas"][0], PREFERRED_BACK_TIMEOUT_S,
                                       "every partition led by its preferred replica")
        print(f"[fetch-sessions] leaders back: {sorted((i, p['leader']) for i, p in back.items())}")
        before = consumer.count()
        load.wait_more_acked(ACKED_PER_PHASE, "with leadership back")
        consumer.wait_count(before + ACKED_PER_PHASE // 2, 60, "with leadership back")
        restarted = metric(cluster.nodes[victim], "chronik_fetch_sessions")
        print(f"[fetch-sessions] sessions on the restarted node {victim}: {restarted}")
    finally:
        load.stop()

    try:
        logs, hws = read_whole_topic(cluster.bootstrap, TOPIC, PARTITIONS)
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        while any(len(consumer.records[p]) < hws[p] for p in range(PARTITIONS)):
            assert consumer.error is None, f"consumer failed: {consumer.error!r}"
            assert time.monotonic() < deadline, \
                f"consumer stuck: read {[len(consumer.records[p]) for p in range(PARTITIONS)]} of {hws}"
            time.sleep(0.2)
    finally:
        consumer.close()
        logging.getLogger("kafka.consumer.fetcher").removeHandler(invalid)

    violations = check(load, logs)
    assert not violations, "\n".join(violations)
    for p in range(PARTITIONS):
        read = consumer.records[p]
        stored = [(o, v) for o, v in logs[p]]
        assert read == stored, (f"partition {p}: consumer read {len(read)} records, the log has {len(stored)}; "
                                f"first difference at {next((i for i, (a, b) in enumerate(zip(read, stored)) if a != b), min(len(read), len(stored)))}")
    print(f"[fetch-sessions] read {consumer.count()} records exactly once in order; "
          f"highest session epoch {consumer.max_epoch}; invalid responses {len(invalid.seen)}")
    assert not invalid.seen, invalid.seen[:5]
    assert consumer.max_epoch >= INCREMENTAL_EPOCHS_MIN, \
        f"the consumer's fetch sessions reached epoch {consumer.max_epoch} only"
