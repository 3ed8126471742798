"""A paused group coordinator that wakes up never answers from its old view.

Found by the fault campaign (faults/test_campaign.py::test_paused_metadata_leader): a consumer
re-read a partition from offset 0 although its group had committed 200. The coordinator had been
frozen (SIGSTOP) long enough for the cluster to move its offsets partition to another broker, where
the group went on committing; when it woke it still believed it led that partition and answered an
OffsetFetch from its old map: "nothing committed" for a partition first committed on the new
coordinator, so the member reset to the earliest offset.

The test makes that window certain: a raw connection to the coordinator is opened before the pause,
the cluster moves the group and commits on the new coordinator, an OffsetFetch is written to the
frozen broker's socket, and the broker is resumed: the queued request is the first thing it reads.
Its answer, and those of the next seconds, must be NOT_COORDINATOR (or loading) or the offsets the
new coordinator holds, never an older view.
"""

import socket
import struct
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from chronik_cluster import PARTITION_FAILOVER_TIMEOUT_S
from checker import create_rf3_topic
from kafka_helpers import kstring, recv_exact, wait_for
from test_group_coordinator_move import OFFSETS_TOPIC, offsets_partition_of

TOPIC = "paused-coordinator"
GROUP = "paused-coordinator-group"
# Committed before the pause (partition 0 only), and on the new coordinator during it.
COMMITTED_BEFORE = {0: 10}
COMMITTED_DURING = {0: 20, 2: 30}
PARTITIONS_ASKED = (0, 1, 2)
COMMIT_TIMEOUT_S = 60.0
# A request written to the frozen broker is answered once it resumes; the socket waits this long.
ANSWER_TIMEOUT_S = 30.0
# How long the woken broker keeps being asked after it resumed.
WATCH_AFTER_S = 3.0

API_OFFSET_FETCH = 9
NOT_COORDINATOR = 16
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
REFUSALS = {NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE}


class RawOffsetFetch:
    """OffsetFetch v1 on a plain socket to one broker (v1: no top-level error, a group error is
    reported on every partition), so a request can be queued on a frozen broker."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=ANSWER_TIMEOUT_S)
        self.correlation = 0

    def send(self):
        self.correlation += 1
        body = kstring(GROUP) + struct.pack(">i", 1) + kstring(TOPIC) + struct.pack(">i", len(PARTITIONS_ASKED))
        body += b"".join(struct.pack(">i", p) for p in PARTITIONS_ASKED)
        frame = struct.pack(">hhi", API_OFFSET_FETCH, 1, self.correlation) + kstring("raw-offset-fetch") + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)

    def receive(self):
        """{partition: (offset, error code)} of the answer to the last request."""
        (size,) = struct.unpack(">i", recv_exact(self.sock, 4))
        data = recv_exact(self.sock, size)
        (correlation,) = struct.unpack_from(">i", data, 0)
        assert correlation == self.correlation, f"answer to request {correlation}, expected {self.correlation}"
        at = 4
        (topics,) = struct.unpack_from(">i", data, at)
        at += 4
        out = {}
        for _ in range(topics):
            (n,) = struct.unpack_from(">h", data, at)
            at += 2 + n
            (parts,) = struct.unpack_from(">i", data, at)
            at += 4
            for _ in range(parts):
                partition, offset, meta_len = struct.unpack_from(">iqh", data, at)
                at += 14 + max(meta_len, 0)
                (error,) = struct.unpack_from(">h", data, at)
                at += 2
                out[partition] = (offset, error)
        return out

    def ask(self):
        self.send()
        return self.receive()

    def close(self):
        self.sock.close()


def commit(bootstrap, offsets):
    """Commits {partition: offset} for GROUP (a group without members, as an admin tool would),
    retrying while the coordinator moves."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False)
    try:
        def done():
            try:
                consumer.commit({TopicPartition(TOPIC, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})
                return True
            except KafkaError as e:
                print(f"[paused-coordinator] commit {offsets} retried: {e!r}")
                return False
        wait_for(done, COMMIT_TIMEOUT_S, f"commit {offsets}", 0.5)
    finally:
        consumer.close()


def coordinator_of_group(cluster):
    """The leader of GROUP's offsets partition in the running nodes' metadata."""
    def leader():
        parts = cluster.partitions(OFFSETS_TOPIC)
        if not parts:
            return None
        p = parts[offsets_partition_of(GROUP, len(parts))]
        return p["leader"] if p["leader"] and p["leader"] > 0 else None
    return wait_for(leader, PARTITION_FAILOVER_TIMEOUT_S, "a leader of the group's offsets partition", 0.2)


def stale(answer, expected):
    """Partitions whose answer is neither a refusal nor the offset the cluster holds."""
    return {p: (offset, error) for p, (offset, error) in answer.items()
            if error not in REFUSALS and not (error == 0 and offset == expected.get(p, -1))}


def test_woken_coordinator_does_not_answer_from_its_old_view(cluster):
    create_rf3_topic(cluster, TOPIC)
    commit(cluster.bootstrap, COMMITTED_BEFORE)
    victim = coordinator_of_group(cluster)
    node = cluster.nodes[victim]
    raw = RawOffsetFetch(node.host, node.kafka_port)
    survivors = [n for i, n in cluster.nodes.items() if i != victim]
    expected = dict(COMMITTED_BEFORE)
    try:
        before = raw.ask()
        assert before[0] == (COMMITTED_BEFORE[0], 0) and before[2] == (-1, 0), f"before the pause: {before}"
        print(f"[paused-coordinator] SIGSTOP node {victim}, coordinator of {GROUP}")
        node.pause()
        try:
            moved_to = wait_for(lambda: (lambda c: c if c != victim else None)(coordinator_of_group(cluster)),
                                PARTITION_FAILOVER_TIMEOUT_S, "the group's offsets partition led elsewhere", 0.2)
            commit(",".join(n.bootstrap for n in survivors), COMMITTED_DURING)
            expected.update(COMMITTED_DURING)
            print(f"[paused-coordinator] group moved to node {moved_to}; committed {COMMITTED_DURING} there")
            raw.send()
        finally:
            node.resume()
        woken = raw.receive()
        print(f"[paused-coordinator] first answer of the woken node {victim}: {woken}")
        assert not stale(woken, expected), (
            f"node {victim} answered from its view before the pause: {stale(woken, expected)} "
            f"(the cluster holds {expected})")
        deadline = time.monotonic() + WATCH_AFTER_S
        while time.monotonic() < deadline:
            answer = raw.ask()
            assert not stale(answer, expected), f"node {victim} answered {answer}, the cluster holds {expected}"
            time.sleep(0.1)
    finally:
        raw.close()
