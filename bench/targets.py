"""The brokers a benchmark runs against: one node, or a three-node cluster (RF 3, min ISR 2).

Both start chronik-server processes themselves on free loopback ports in a temp
dir (through the test harness's `Broker`, tests/python/chronik_broker.py) and stop
them by PID. The three-node cluster is probed, not assumed: if the nodes do not
form one metadata group with three voters, `start()` raises `ClusterUnavailable`
and the report prints "n/a" for its rows instead of inventing figures.
"""

import json
import sys
from concurrent.futures import ThreadPoolExecutor
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "python"))

from chronik_broker import Broker, BrokerError  # noqa: E402

CLUSTER_NODES = 3
CLUSTER_RF = 3
CLUSTER_MIN_ISR = 2
# How long three nodes may take to elect a leader and add each other as voters.
CLUSTER_FORM_TIMEOUT_S = 45.0
# Three nodes that each lead a group of one voter for this long are not clustering.
CLUSTER_SOLO_GIVE_UP_S = 5.0
HEALTH_TIMEOUT_S = 2.0
POLL_S = 0.25


class ClusterUnavailable(RuntimeError):
    """The three-node cluster could not be formed with this build; says why."""


def health(admin_addr):
    try:
        with urllib.request.urlopen(f"http://{admin_addr}/admin/health", timeout=HEALTH_TIMEOUT_S) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


# The brokers' fsync mode unless a target asks for another (the broker's own default).
DEFAULT_FSYNC = "always"


def fsync_label(base, fsync):
    """A target's label: `base`, naming the fsync mode when it is not the default."""
    return base if fsync == DEFAULT_FSYNC else f"{base}, fsync={fsync}"


class SingleNode:
    label = "1 node"
    replication = 1

    def __init__(self, workdir, partitions, fsync=DEFAULT_FSYNC):
        self.workdir = Path(workdir)
        self.label = fsync_label(SingleNode.label, fsync)
        self.broker = Broker(self.workdir / "node-1", num_partitions=partitions, settings={"fsync": fsync})

    def start(self):
        self.broker.start()

    def stop(self):
        self.broker.stop()

    @property
    def bootstrap(self):
        return self.broker.bootstrap

    @property
    def pids(self):
        return [self.broker.proc.pid] if self.broker.is_running() else []

    @property
    def admin_addrs(self):
        return [self.broker.admin_addr]

    def log_tail(self):
        return self.broker.log_tail()


class ThreeNodeCluster:
    label = f"{CLUSTER_NODES} nodes RF{CLUSTER_RF}"
    replication = CLUSTER_RF

    def __init__(self, workdir, partitions, fsync=DEFAULT_FSYNC):
        self.workdir = Path(workdir)
        self.label = fsync_label(ThreeNodeCluster.label, fsync)
        self.nodes = [Broker(Path(workdir) / f"node-{i}", node_id=i, num_partitions=partitions)
                      for i in range(1, CLUSTER_NODES + 1)]
        peers = []
        for b in self.nodes:
            peers += ["[[peers]]", f"id = {b.node_id}",
                      f'kafka = "127.0.0.1:{b.kafka_port}"', f'wal = "127.0.0.1:{b.wal_port}"',
                      f'raft = "127.0.0.1:{b.raft_port}"', f'admin = "127.0.0.1:{b.admin_port}"', ""]
        # Each Broker wrote a single-node config; replace it with the cluster's.
        for b in self.nodes:
            addrs = {"kafka": b.kafka_port, "wal": b.wal_port, "raft": b.raft_port, "admin": b.admin_port}
            lines = [
                f"node_id = {b.node_id}", f'data_dir = "{b.data_dir}"',
                "auto_create_topics = true", f"num_partitions = {partitions}",
                f"replication_factor = {CLUSTER_RF}", f"min_insync_replicas = {CLUSTER_MIN_ISR}",
                "group_initial_rebalance_delay_ms = 0", f'fsync = "{fsync}"', "",
                "[bind]", *[f'{k} = "127.0.0.1:{p}"' for k, p in addrs.items()], "",
                "[advertise]", *[f'{k} = "127.0.0.1:{p}"' for k, p in addrs.items()], "",
                *peers,
            ]
            b.config_path.write_text("\n".join(lines))

    def start(self):
        # Start all three at once: a bootstrapping node waits for its peers before it is healthy.
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            outcomes = list(pool.map(self._start_node, self.nodes))
        failed = [o for o in outcomes if o is not None]
        if failed:
            self.stop()
            raise ClusterUnavailable("; ".join(failed))
        deadline = time.monotonic() + CLUSTER_FORM_TIMEOUT_S
        solo_since = None
        last = None
        while time.monotonic() < deadline:
            views = [health(b.admin_addr) for b in self.nodes]
            last = views
            if any(v and len(v.get("voters", [])) == CLUSTER_NODES and v.get("leader_id") for v in views):
                return
            solo = all(v and v.get("voters") == [v.get("node_id")] for v in views)
            solo_since = (solo_since or time.monotonic()) if solo else None
            if solo_since and time.monotonic() - solo_since > CLUSTER_SOLO_GIVE_UP_S:
                self.stop()
                raise ClusterUnavailable(
                    "each node runs a one-voter metadata group of its own; "
                    "multi-node clustering is not implemented in this build")
            time.sleep(POLL_S)
        self.stop()
        raise ClusterUnavailable(f"no three-voter group within {CLUSTER_FORM_TIMEOUT_S:.0f}s (health: {last})")

    @staticmethod
    def _start_node(b):
        """None when the node became healthy, else why not (first line of the error)."""
        try:
            b.start()
            return None
        except BrokerError as e:
            lines = [l for l in str(e).splitlines() if l.strip()]
            why = lines[0] if lines else "no message"
            # The broker's last log line says why (its log goes with the work dir).
            last = f" (its log ends: {lines[-1].strip()[:300]})" if len(lines) > 1 else ""
            return f"node {b.node_id} did not start: {why}{last}"

    def stop(self):
        for b in self.nodes:
            b.stop()

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.nodes)

    @property
    def pids(self):
        return [b.proc.pid for b in self.nodes if b.is_running()]

    @property
    def admin_addrs(self):
        return [b.admin_addr for b in self.nodes]

    def log_tail(self):
        return "\n".join(b.log_tail() for b in self.nodes)
