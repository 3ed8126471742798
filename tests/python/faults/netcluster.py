"""A chronik-server cluster whose nodes each run on a host of their own (netns.Network).

Every node listens on the default ports at its own address (10.80.0.<id>), started through
`ip netns exec`, so the PID the test holds is the broker's own (ip execs it) and kill -9,
SIGSTOP and stop by PID work as on loopback. The test thread must be inside the network
(`Network.entered()`) to reach them.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chronik_cluster import Cluster, ClusterNode  # noqa: E402
from small_fs import mount_small_fs, unmount  # noqa: E402

# Every host has the whole port space to itself: the defaults of docs/CONFIG.md.
KAFKA_PORT, WAL_PORT, RAFT_PORT, ADMIN_PORT_BASE = 9092, 9291, 5001, 10000


class NetCluster(Cluster):
    """`disk_bytes` (optional) gives every node a data dir on a file system of that size of its own
    (small_fs.py), so a nemesis can fill one node's disk; `stop()` unmounts them."""

    def __init__(self, workdir, net, nodes=3, disk_bytes=None, **settings):
        self.net = net
        self.disk_bytes = disk_bytes
        self.mounts = []
        try:
            super().__init__(workdir, nodes=nodes, **settings)
        except BaseException:
            self._unmount_all()
            raise

    def make_node(self, node_id):
        if node_id not in self.net.node_ids:
            self.net.add_node(node_id)
        ports = {"kafka": KAFKA_PORT, "wal": WAL_PORT, "raft": RAFT_PORT, "admin": ADMIN_PORT_BASE + node_id}
        workdir = self.workdir / f"node-{node_id}"
        data_dir = None
        if self.disk_bytes:
            disk = workdir / "disk"
            disk.mkdir(parents=True, exist_ok=True)
            mount_small_fs(disk, self.disk_bytes, image=workdir / "disk.img")
            self.mounts.append(disk)
            data_dir = disk / "data"
        return ClusterNode(workdir, node_id=node_id, host=self.net.addr(node_id), ports=ports,
                           command_prefix=self.net.exec_prefix(node_id), data_dir=data_dir)

    def disk(self, node_id):
        """The mount point of node `node_id`'s own file system (with `disk_bytes`)."""
        return self.workdir / f"node-{node_id}" / "disk"

    def stop(self):
        try:
            super().stop()
        finally:
            self._unmount_all()

    def _unmount_all(self):
        for m in self.mounts:
            unmount(m)
        self.mounts = []
