"""Full data disks under load, every node's data dir a small file system of its own (small_fs.py):

- one node's disk: the node answers KAFKA_STORAGE_ERROR for what it cannot write (the idempotent
  producers retry), keeps serving, and takes writes again once space returns, without a restart;
- both followers' disks: they cannot store what they fetch and fall out of the ISR, so acks=all to the
  partitions the third node leads gets NOT_ENOUGH_REPLICAS (min ISR 2) instead of an acknowledgement
  only one disk holds; once space returns the followers catch up and rejoin without a restart.

Nothing acknowledged is lost in either (campaign.run_scenario's checks)."""

import time

import pytest
from confluent_kafka import KafkaError

from campaign import assert_outcome, run_scenario
from kafka_helpers import make_producer
from nemeses import DiskFull, DiskFullFollowers
from small_fs import MountError

DISK_BYTES = 256 << 20
HOLD_S = 12.0
# The followers leave the ISR after the cluster's replica lag limit (10 s) once they stop storing.
ISR_SHRINK_WITHIN_S = 40.0
PROBE_MESSAGE_TIMEOUT_MS = 10_000


def test_full_disk_on_a_partition_leader(net_cluster):
    nemesis = DiskFull()
    try:
        cluster_cm = net_cluster(3, disk_bytes=DISK_BYTES)
        with cluster_cm as (cluster, net):
            starts = {n: node.starts for n, node in cluster.nodes.items()}
            outcome = run_scenario(cluster, net, "disk", nemesis, HOLD_S)
            restarted = [n for n, node in cluster.nodes.items() if node.starts != starts[n] or not node.is_running()]
            full_log = cluster.nodes[nemesis.node].log_path.read_text(errors="replace")
    except MountError as e:
        pytest.skip(f"no small file system for the nodes' data: {e}")
    assert_outcome(outcome, nemesis)
    assert "partition log is out of space" in full_log, f"node {nemesis.node} never ran out of space"
    # Every record was acknowledged in the end, those for the full node's partitions once space returned.
    assert outcome.acked == outcome.sent, f"{outcome.sent - outcome.acked} records never acknowledged"
    assert not restarted, f"nodes {restarted} stopped or were restarted on a full disk"


def refused_for_want_of_replicas(nemesis):
    """While both followers' disks are full: waits until a partition the healthy node leads has an
    ISR of that node alone, then offers it one acks=all record that must be refused with
    NOT_ENOUGH_REPLICAS. Returns violations."""
    def probe(ctx):
        deadline = time.monotonic() + ISR_SHRINK_WITHIN_S
        alone = None
        while alone is None and time.monotonic() < deadline:
            parts = ctx.cluster.partitions(ctx.topic)
            alone = next((i for i, p in sorted(parts.items())
                          if p["leader"] == nemesis.leader and p["isr"] == [nemesis.leader]), None)
            time.sleep(0.2)
        if alone is None:
            return [f"no partition led by node {nemesis.leader} shrank its ISR to that node within "
                    f"{ISR_SHRINK_WITHIN_S:.0f}s of the followers' disks filling"]
        errors = []
        producer = make_producer(ctx.cluster.bootstrap, **{
            "retries": 0, "enable.idempotence": False, "message.timeout.ms": PROBE_MESSAGE_TIMEOUT_MS})
        producer.produce(ctx.topic, value=b"min-isr-probe", partition=alone,
                         on_delivery=lambda err, msg: errors.append(err))
        producer.flush(PROBE_MESSAGE_TIMEOUT_MS / 1000 + 5)
        print(f"[campaign] partition {alone}: ISR [{nemesis.leader}] alone; acks=all answered {errors}")
        if not errors or errors[0] is None:
            return [f"partition {alone} acknowledged an acks=all write with an ISR of node {nemesis.leader} alone"]
        if errors[0].code() != KafkaError.NOT_ENOUGH_REPLICAS:
            return [f"partition {alone}: acks=all with too small an ISR answered {errors[0]}, not NOT_ENOUGH_REPLICAS"]
        return []
    return probe


def test_full_disks_on_both_followers(net_cluster):
    nemesis = DiskFullFollowers()
    try:
        with net_cluster(3, disk_bytes=DISK_BYTES) as (cluster, net):
            starts = {n: node.starts for n, node in cluster.nodes.items()}
            outcome = run_scenario(cluster, net, "disk", nemesis, HOLD_S, during=refused_for_want_of_replicas(nemesis))
            restarted = [n for n, node in cluster.nodes.items() if node.starts != starts[n] or not node.is_running()]
    except MountError as e:
        pytest.skip(f"no small file system for the nodes' data: {e}")
    assert_outcome(outcome, nemesis)
    assert outcome.acked == outcome.sent, f"{outcome.sent - outcome.acked} records never acknowledged"
    assert not restarted, f"nodes {restarted} stopped or were restarted on a full disk"
