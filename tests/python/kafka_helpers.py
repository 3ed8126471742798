"""Client-side helpers shared by the harness tests: topic creation, producing with
delivery reports, reading a partition back with each client, and a raw Fetch that
shows the stored batch headers (to prove compression reached the log)."""

import socket
import struct
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# Deadlines (seconds) and sizes.
ADMIN_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 120.0
READ_TIMEOUT_S = 180.0
RAW_FETCH_MAX_BYTES = 1 << 20
# librdkafka's local queue; produce() waits on poll() when it is full.
PRODUCER_QUEUE_MESSAGES_MAX = 200_000


class Deadline:
    def __init__(self, seconds, what):
        self.end = time.monotonic() + seconds
        self.what = what

    def expired(self):
        return time.monotonic() >= self.end

    def remaining(self):
        return max(0.0, self.end - time.monotonic())

    def check(self, detail=""):
        if self.expired():
            raise AssertionError(f"timed out waiting for {self.what} {detail}".rstrip())


def wait_for(predicate, timeout_s, what, interval_s=0.05):
    """Poll `predicate` until it returns truthy or the deadline passes (then fail)."""
    deadline = Deadline(timeout_s, what)
    while True:
        value = predicate()
        if value:
            return value
        deadline.check()
        time.sleep(interval_s)


def create_topic(bootstrap, name, partitions):
    """Create a topic (replication factor 1) and wait until metadata shows every partition."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                  operation_timeout=ADMIN_TIMEOUT_S)
    futures[name].result(timeout=ADMIN_TIMEOUT_S)

    def ready():
        md = admin.list_topics(topic=name, timeout=5)
        t = md.topics.get(name)
        return (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader >= 0 for p in t.partitions.values()))

    wait_for(ready, ADMIN_TIMEOUT_S, f"metadata of topic {name}", interval_s=0.2)


class DeliveryLog:
    """Thread-safe record of delivery reports: acked (value -> (partition, offset)) and errors."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}
        self.acked_order = []  # values in the order their reports arrived
        self.errors = []

    def callback(self, err, msg):
        with self.lock:
            if err is not None:
                self.errors.append((msg.value(), err))
            else:
                value = msg.value()
                self.acked[value] = (msg.partition(), msg.offset())
                self.acked_order.append(value)

    def acked_count(self):
        with self.lock:
            return len(self.acked)


def make_producer(bootstrap, **overrides):
    conf = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "queue.buffering.max.messages": PRODUCER_QUEUE_MESSAGES_MAX,
    }
    conf.update(overrides)
    return Producer(conf)


def produce_all(producer, topic, values, log, partition=None, key_fn=None):
    """Produce every value, waiting on poll() when librdkafka's queue is full."""
    for i, v in enumerate(values):
        kwargs = {"value": v, "on_delivery": log.callback}
        if partition is not None:
            kwargs["partition"] = partition
        if key_fn is not None:
            kwargs["key"] = key_fn(i, v)
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(FLUSH_TIMEOUT_S)
    assert remaining == 0, f"{remaining} messages still undelivered after {FLUSH_TIMEOUT_S}s flush"


def read_partition_kafka_python(bootstrap, topic, partition, count, timeout_s=READ_TIMEOUT_S):
    """Read `count` records from offset 0 of one partition with kafka-python.

    Returns [(offset, value)] in the order the client handed them out.
    """
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, fetch_max_bytes=8 << 20,
                             max_partition_fetch_bytes=4 << 20)
    try:
        tp = KpTopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        out = []
        deadline = Deadline(timeout_s, f"kafka-python to read {count} records of {topic}/{partition}")
        while len(out) < count:
            deadline.check(f"(got {len(out)})")
            batch = consumer.poll(timeout_ms=500, max_records=10_000)
            for recs in batch.values():
                out.extend((r.offset, r.value) for r in recs)
        return out
    finally:
        consumer.close()


def read_partition_confluent(bootstrap, topic, partition, count, timeout_s=READ_TIMEOUT_S,
                             start_offset=0):
    """Read `count` records of one partition with confluent-kafka; returns [(offset, value)]."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "reader-unused",  # required by librdkafka; no subscribe, no commits
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })
    try:
        consumer.assign([TopicPartition(topic, partition, start_offset)])
        out = []
        deadline = Deadline(timeout_s, f"confluent-kafka to read {count} records of {topic}/{partition}")
        while len(out) < count:
            deadline.check(f"(got {len(out)})")
            for m in consumer.consume(num_messages=10_000, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consume error on {topic}/{partition}: {m.error()}")
                out.append((m.offset(), m.value()))
        return out
    finally:
        consumer.close()


# Leadership can still be moving when a test reads the watermarks (a rebalance after a fault heals);
# librdkafka answers such a query with the error instead of retrying it.
WATERMARK_RETRY_CODES = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                         KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.NOT_COORDINATOR,
                         KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT)


def high_watermarks(bootstrap, topic, partitions, timeout_s=ADMIN_TIMEOUT_S):
    """{partition: high watermark}, retrying errors that mean leadership is moving, up to `timeout_s`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks-unused"})
    deadline = Deadline(timeout_s, f"the high watermarks of {topic}")
    try:
        out = {}
        for p in range(partitions):
            while p not in out:
                try:
                    out[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                except KafkaException as e:
                    if e.args[0].code() not in WATERMARK_RETRY_CODES:
                        raise
                    deadline.check(f"(partition {p}: {e.args[0]})")
                    time.sleep(0.2)
        return out
    finally:
        consumer.close()


# ---- raw Fetch v4: see the stored batch header bytes --------------------------

def kstring(s):
    """A Kafka protocol STRING: int16 length, then the UTF-8 bytes."""
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def recv_exact(sock, n):
    """Exactly `n` bytes from a raw connection to a broker (ConnectionError if it closes first)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        buf.extend(chunk)
    return bytes(buf)


def _raw_call(bootstrap, api_key, version, body, correlation):
    """One raw request on a connection of its own to exactly this broker; returns the response body
    after the correlation id (checked)."""
    host, port = bootstrap.rsplit(":", 1)
    req = struct.pack(">hhi", api_key, version, correlation) + kstring("chronik-raw") + body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", recv_exact(sock, 4))[0]
        resp = recv_exact(sock, size)
    corr = struct.unpack_from(">i", resp, 0)[0]
    assert corr == correlation, f"raw call: correlation id {corr} != {correlation}"
    return resp[4:]


def raw_metadata_topics(bootstrap):
    """The topic names (error code 0) in one Metadata v1 answer for all topics from exactly this
    broker (a client library would pick any broker it knows)."""
    resp = _raw_call(bootstrap, 3, 1, struct.pack(">i", -1), correlation=11)
    pos = 0

    def string():
        nonlocal pos
        n = struct.unpack_from(">h", resp, pos)[0]
        pos += 2
        if n < 0:
            return None
        v = resp[pos:pos + n].decode()
        pos += n
        return v

    def int32():
        nonlocal pos
        v = struct.unpack_from(">i", resp, pos)[0]
        pos += 4
        return v

    for _ in range(int32()):  # brokers: node id, host, port, rack
        int32(), string(), int32(), string()
    int32()  # controller id
    names = set()
    for _ in range(int32()):
        err = struct.unpack_from(">h", resp, pos)[0]
        pos += 2
        name = string()
        pos += 1  # is_internal
        for _ in range(int32()):  # partitions: error, index, leader, replicas, isr
            pos += 2 + 4 + 4
            for _list in ("replicas", "isr"):
                n = int32()
                pos += 4 * n
        if err == 0:
            names.add(name)
    return names


def raw_fetch_batch_headers(bootstrap, topic, partition, offset=0):
    """Send one Fetch v4 request and return [(base_offset, attributes, record_count)]
    for the whole record batches in the answer, so a test can read the codec bits."""
    host, port = bootstrap.rsplit(":", 1)
    body = struct.pack(">iiiib", -1, 1000, 1, RAW_FETCH_MAX_BYTES, 0)  # replica, wait, min, max, isolation
    body += struct.pack(">i", 1) + kstring(topic)
    body += struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, RAW_FETCH_MAX_BYTES)
    header = struct.pack(">hhi", 1, 4, 7) + kstring("chronik-raw-fetch")  # Fetch, v4, correlation 7
    req = header + body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", recv_exact(sock, 4))[0]
        resp = recv_exact(sock, size)
    pos = 0
    corr, _throttle, ntopics = struct.unpack_from(">iii", resp, pos)
    pos += 12
    assert corr == 7, f"raw fetch: correlation id {corr} != 7"
    assert ntopics == 1, f"raw fetch: {ntopics} topics in answer"
    tlen = struct.unpack_from(">h", resp, pos)[0]
    pos += 2 + tlen
    nparts = struct.unpack_from(">i", resp, pos)[0]
    pos += 4
    assert nparts == 1, f"raw fetch: {nparts} partitions in answer"
    _p, err, _hw, _lso, naborted = struct.unpack_from(">ihqqi", resp, pos)
    pos += 4 + 2 + 8 + 8 + 4
    assert err == 0, f"raw fetch of {topic}/{partition}: error code {err}"
    if naborted > 0:
        pos += naborted * 16
    rlen = struct.unpack_from(">i", resp, pos)[0]
    pos += 4
    records = resp[pos:pos + max(rlen, 0)]
    out = []
    i = 0
    while i + 61 <= len(records):
        base_offset, batch_len = struct.unpack_from(">qi", records, i)
        if i + 12 + batch_len > len(records):
            break  # partial trailing batch (legal)
        attributes = struct.unpack_from(">h", records, i + 21)[0]
        record_count = struct.unpack_from(">i", records, i + 57)[0]
        out.append((base_offset, attributes, record_count))
        i += 12 + batch_len
    return out
