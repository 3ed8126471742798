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

# Every host has the whole port space to itself: the defaults of docs/CONFIG.md.
KAFKA_PORT, WAL_PORT, RAFT_PORT, ADMIN_PORT_BASE = 9092, 9291, 5001, 10000


class NetCluster(Cluster):
    def __init__(self, workdir, net, nodes=3, **settings):
        self.net = net
        super().__init__(workdir, nodes=nodes, **settings)

    def make_node(self, node_id):
        if node_id not in self.net.node_ids:
            self.net.add_node(node_id)
        ports = {"kafka": KAFKA_PORT, "wal": WAL_PORT, "raft": RAFT_PORT, "admin": ADMIN_PORT_BASE + node_id}
        return ClusterNode(self.workdir / f"node-{node_id}", node_id=node_id, host=self.net.addr(node_id),
                           ports=ports, command_prefix=self.net.exec_prefix(node_id))
