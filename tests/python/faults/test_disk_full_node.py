"""A full data disk on one node of three, under load: the node answers KAFKA_STORAGE_ERROR for what
it cannot write (the idempotent producers retry), keeps serving, and takes writes again once space
returns, without a restart; nothing acknowledged is lost (campaign.run_scenario's checks). Every
node's data dir is a small file system of its own (small_fs.py); the nemesis fills one node's."""

import pytest

from campaign import assert_outcome, run_scenario
from nemeses import DiskFull
from small_fs import MountError

DISK_BYTES = 256 << 20
HOLD_S = 12.0


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
