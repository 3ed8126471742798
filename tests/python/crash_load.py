"""A producer load that survives a broker kill -9, and the checks run after it.

Shared by test_crash.py (plain producers, no retries), test_idempotent_crash.py
(idempotent producers with retries) and cluster/test_cluster_faults.py (idempotent
producers while cluster nodes are killed)."""

import collections
import threading
import time

from confluent_kafka import KafkaException

from kafka_helpers import (
    DeliveryLog, high_watermarks, make_producer, read_partition_confluent, wait_for,
)

PRODUCERS = 2
# Records acknowledged before the kill, and after the restart, before moving on.
ACKED_BEFORE_KILL = 10_000
ACKED_AFTER_RESTART = 5_000
PROGRESS_TIMEOUT_S = 120.0
STOP_FLUSH_TIMEOUT_S = 120.0
PRODUCE_PAUSE_EVERY = 200  # records between short pauses, so the load spans the kill
PRODUCE_PAUSE_S = 0.002


def value_of(producer_no, seq):
    return f"p{producer_no}-{seq:09d}".encode()


def parse_value(value):
    p, seq = value.decode().split("-")
    return int(p[1:]), int(seq)


class ProducerLoad:
    """`producers` threads, each with its own confluent-kafka producer, writing
    `p<n>-<seq>` values round-robin over the partitions until stopped, with a pause of
    `pause_s` every `pause_every` records so the load spreads over the faults."""

    def __init__(self, bootstrap, topic, partitions, producer_conf, producers=PRODUCERS,
                 pause_every=PRODUCE_PAUSE_EVERY, pause_s=PRODUCE_PAUSE_S):
        self.topic = topic
        self.partitions = partitions
        self.pause_every = pause_every
        self.pause_s = pause_s
        self.log = DeliveryLog()
        self.stop_event = threading.Event()
        self.fatal = []  # fatal client errors (error_cb) and exceptions in threads
        self.sent = [0] * producers
        self.unflushed = [0] * producers
        conf = dict(producer_conf)
        conf["error_cb"] = self._error_cb
        self.threads = [threading.Thread(target=self._run, args=(n, bootstrap, conf),
                                         name=f"producer-{n}", daemon=True)
                        for n in range(producers)]

    def _error_cb(self, err):
        # Transport errors while a broker is down are expected; fatal (idempotence) ones are not.
        if err.fatal():
            self.fatal.append(str(err))

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self, n, bootstrap, conf):
        try:
            producer = make_producer(bootstrap, **conf)
            seq = 0
            while not self.stop_event.is_set():
                value = value_of(n, seq)
                try:
                    producer.produce(self.topic, value=value, partition=seq % self.partitions,
                                     on_delivery=self.log.callback)
                    seq += 1
                except BufferError:
                    producer.poll(0.05)
                    continue
                producer.poll(0)
                if seq % self.pause_every == 0:
                    time.sleep(self.pause_s)
            self.sent[n] = seq
            self.unflushed[n] = producer.flush(STOP_FLUSH_TIMEOUT_S)
        except KafkaException as e:
            self.fatal.append(f"producer {n}: {e}")

    def wait_acked(self, count, what):
        wait_for(lambda: self.log.acked_count() >= count or self.fatal, PROGRESS_TIMEOUT_S,
                 f"{count} acked records ({what})", interval_s=0.05)
        assert not self.fatal, f"fatal producer errors: {self.fatal}"

    def wait_more_acked(self, more, what):
        """Until `more` records beyond those acked now are acked."""
        self.wait_acked(self.log.acked_count() + more, f"{more} more: {what}")

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=STOP_FLUSH_TIMEOUT_S + 30)
            assert not t.is_alive(), f"{t.name} did not finish"


def load_across_kill9(broker, topic, partitions, producer_conf, tag, during_load=None):
    """Produce to `topic` with a ProducerLoad while `broker` is killed with SIGKILL and
    restarted on the same data dir, then read the whole topic back.

    Waits for ACKED_BEFORE_KILL acks (calling `during_load()` once half of them are in, to
    act while the producers run), kill -9s and restarts the broker, waits for
    ACKED_AFTER_RESTART more, stops the load and checks no producer hit a fatal error.
    Returns (load, {partition: [(offset, value)]}, what during_load returned)."""
    load = ProducerLoad(broker.bootstrap, topic, partitions, producer_conf).start()
    during = None
    try:
        if during_load is not None:
            load.wait_acked(ACKED_BEFORE_KILL // 2, "warm-up")
            during = during_load()
        load.wait_acked(ACKED_BEFORE_KILL, "before kill")
        acked_at_kill = load.log.acked_count()
        broker.restart_after_crash()
        print(f"[{tag}] killed with {acked_at_kill} acked; restarted (start #{broker.starts})")
        load.wait_more_acked(ACKED_AFTER_RESTART, "after restart")
    finally:
        load.stop()
    assert not load.fatal, f"fatal {tag} producer errors: {load.fatal}"

    logs, hws = read_whole_topic(broker.bootstrap, topic, partitions)
    print(f"[{tag}] high watermarks after restart: {hws}")
    return load, logs, during


def read_whole_topic(bootstrap, topic, partitions):
    """{partition: [(offset, value)]} from offset 0 up to each high watermark."""
    hws = high_watermarks(bootstrap, topic, partitions)
    return {p: (read_partition_confluent(bootstrap, topic, p, hws[p]) if hws[p] else [])
            for p in range(partitions)}, hws


def check_acked_records(load, logs):
    """Every acked value sits once at its acked (partition, offset), in order.

    Returns (positions, occurrences) for further checks."""
    acked = dict(load.log.acked)
    positions = {p: {o: v for o, v in recs} for p, recs in logs.items()}
    occurrences = collections.Counter(v for recs in logs.values() for _, v in recs)

    in_partition = {p: {v for _, v in recs} for p, recs in logs.items()}

    def stored(v, po):
        # librdkafka's implicit ack reports a record stored without its offset: it must be in its partition.
        return v in in_partition.get(po[0], ()) if po[1] is None else positions.get(po[0], {}).get(po[1]) == v
    missing = [(v, po) for v, po in acked.items() if not stored(v, po)]
    acked_dups = [v for v in acked if occurrences[v] > 1]
    all_dups = [v for v, c in occurrences.items() if c > 1]
    found = sum(1 for v in acked if occurrences[v] >= 1)
    total = sum(len(r) for r in logs.values())
    print(f"[crash] acked={len(acked)} found={found} missing_at_acked_offset={len(missing)} "
          f"acked_duplicates={len(acked_dups)} log_records={total} log_duplicates={len(all_dups)} "
          f"delivery_errors={len(load.log.errors)} sent={sum(load.sent)}")
    assert not missing, f"{len(missing)} acked records not at their acked offset, e.g. {missing[:5]}"
    assert not acked_dups, f"acked records present more than once, e.g. {acked_dups[:5]}"

    # In order: per producer and partition, a later sequence has a later offset.
    last = {}
    for v, (p, o) in sorted(acked.items(), key=lambda kv: parse_value(kv[0])):
        if o is None:
            continue
        n, seq = parse_value(v)
        prev = last.get((n, p))
        assert prev is None or prev[1] < o, \
            f"order broken on partition {p}: {prev[0]!r}@{prev[1]} then {v!r}@{o}"
        last[(n, p)] = (v, o)
    return positions, occurrences, all_dups
