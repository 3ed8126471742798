"""Start, kill -9 and restart a multi-node chronik-server cluster for tests.

Every node gets free loopback ports, its own config listing every peer, its own
data dir and log under one work dir; nodes are stopped by PID, never by name.
The cluster's own view comes from the admin API (/admin/health, /admin/status).
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chronik_broker import Broker, BrokerError, binary_path  # noqa: E402

# Deadlines (seconds).
CLUSTER_READY_TIMEOUT_S = 90.0
RAFT_FAILOVER_TIMEOUT_S = 30.0
# The contract is 10 s from kill -9 to new partition leaders; the slack covers a busy CI machine.
PARTITION_FAILOVER_TIMEOUT_S = 30.0
ISR_REJOIN_TIMEOUT_S = 90.0
ADMIN_HTTP_TIMEOUT_S = 3.0
POLL_INTERVAL_S = 0.2

# Cluster settings of issue 3's tests (DESIGN §2, §4).
DEFAULT_SETTINGS = {
    "replication_factor": 3,
    "min_insync_replicas": 2,
    "broker_session_timeout_ms": 6000,
    "broker_heartbeat_interval_ms": 1000,
    "replica_lag_time_max_ms": 10000,
    "leader_rebalance_interval_ms": 5000,
}


def admin_get(addr, path):
    """GET http://addr/path as JSON; raises OSError/ValueError when down or malformed."""
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=ADMIN_HTTP_TIMEOUT_S) as resp:
        return json.loads(resp.read().decode("utf-8"))


class ClusterNode(Broker):
    """One node: a Broker whose config lists every peer (written by Cluster)."""

    def write_cluster_config(self, peers, settings):
        addrs = {"kafka": self.kafka_port, "wal": self.wal_port,
                 "raft": self.raft_port, "admin": self.admin_port}
        lines = [
            f"node_id = {self.node_id}",
            f'data_dir = "{self.data_dir}"',
            "auto_create_topics = true",
            "group_initial_rebalance_delay_ms = 0",
            *[f"{k} = {v}" for k, v in settings.items()],
            "",
            "[bind]", *[f'{k} = "127.0.0.1:{p}"' for k, p in addrs.items()], "",
            "[advertise]", *[f'{k} = "127.0.0.1:{p}"' for k, p in addrs.items()], "",
        ]
        for p in peers:
            lines += ["[[peers]]", f"id = {p.node_id}",
                      f'kafka = "127.0.0.1:{p.kafka_port}"', f'wal = "127.0.0.1:{p.wal_port}"',
                      f'raft = "127.0.0.1:{p.raft_port}"', f'admin = "127.0.0.1:{p.admin_port}"', ""]
        self.config_path.write_text("\n".join(lines))

    def spawn(self):
        """Start the process without waiting: a fresh node waits for its peers before it serves."""
        if self.is_running():
            raise BrokerError(f"node {self.node_id} already running as pid {self.proc.pid}")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("NO_COLOR", "1")
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n==== start #{self.starts + 1} ====\n".encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(
            [str(binary_path()), "start", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            env=env, cwd=self.workdir)
        self.starts += 1

    def start(self, timeout_s=CLUSTER_READY_TIMEOUT_S):
        self.spawn()
        self.wait_healthy(timeout_s)
        return self

    def wait_healthy(self, timeout_s=CLUSTER_READY_TIMEOUT_S):
        """Serving the admin API and Kafka port (a leader may not be known yet)."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"node {self.node_id} exited with code {self.proc.returncode}\n"
                                  + self.log_tail())
            try:
                admin_get(self.admin_addr, "/admin/health")
                if self._kafka_port_accepts():
                    return
            except (OSError, ValueError) as e:
                last = str(e)
            time.sleep(POLL_INTERVAL_S)
        raise BrokerError(f"node {self.node_id} not serving within {timeout_s:.0f}s ({last})\n"
                          + self.log_tail())

    def health(self):
        return admin_get(self.admin_addr, "/admin/health")

    def status(self):
        return admin_get(self.admin_addr, "/admin/status")


class Cluster:
    def __init__(self, workdir, nodes=3, first_id=1, **settings):
        self.workdir = Path(workdir)
        self.settings = dict(DEFAULT_SETTINGS, **settings)
        self.nodes = {i: ClusterNode(self.workdir / f"node-{i}", node_id=i)
                      for i in range(first_id, first_id + nodes)}
        for n in self.nodes.values():
            n.write_cluster_config(self.nodes.values(), self.settings)

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.nodes.values())

    def running(self):
        return [i for i, n in self.nodes.items() if n.is_running()]

    def start(self):
        for n in self.nodes.values():
            n.spawn()
        for n in self.nodes.values():
            n.wait_healthy()
        self.wait_agreed_leader()
        self.wait_all_live()
        return self

    def stop(self):
        for n in self.nodes.values():
            n.stop()

    def kill9(self, node_id):
        self.nodes[node_id].kill9()

    def restart(self, node_id):
        self.nodes[node_id].start()

    def log_tails(self, lines=40):
        return "\n".join(f"==== node {i} ====\n{n.log_tail(lines)}" for i, n in self.nodes.items())

    # ---- the cluster's view -------------------------------------------------

    def agreed_leader(self, ids=None):
        """(leader, term) when every node in `ids` (default: the running ones) agrees, else None."""
        ids = ids or self.running()
        views = []
        for i in ids:
            try:
                views.append(self.nodes[i].health())
            except (OSError, ValueError):
                return None
        seen = {(h.get("leader_id"), h.get("term")) for h in views}
        if len(seen) != 1:
            return None
        leader, term = seen.pop()
        if leader not in ids or sum(1 for h in views if h.get("is_leader")) != 1:
            return None
        return leader, term

    def wait_agreed_leader(self, ids=None, timeout_s=CLUSTER_READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.agreed_leader(ids)
            if found:
                return found
            time.sleep(POLL_INTERVAL_S)
        raise AssertionError(f"nodes {ids or self.running()} did not agree on a leader within "
                             f"{timeout_s:.0f}s\n" + self.log_tails(20))

    def leader_status(self):
        leader, _ = self.wait_agreed_leader(timeout_s=RAFT_FAILOVER_TIMEOUT_S)
        return self.nodes[leader].status()

    def wait_all_live(self, timeout_s=CLUSTER_READY_TIMEOUT_S):
        """Until the leader lists every running node as live (heartbeating, not fenced)."""
        deadline = time.monotonic() + timeout_s
        want = set(self.running())
        while time.monotonic() < deadline:
            try:
                live = {n["id"] for n in self.leader_status()["nodes"] if n.get("live")}
                if want <= live:
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(POLL_INTERVAL_S)
        raise AssertionError(f"nodes {sorted(want)} not all live within {timeout_s:.0f}s")

    def partitions(self, topic):
        """{partition: status entry} from the leader's /admin/status."""
        return {p["partition"]: p for p in self.leader_status()["partitions"] if p["topic"] == topic}

    def wait_partitions(self, topic, predicate, timeout_s, what):
        """Until predicate(entry) holds for every partition of `topic`; returns the entries."""
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.partitions(topic)
                if last and all(predicate(p) for p in last.values()):
                    return last
            except (OSError, ValueError, AssertionError):
                pass
            time.sleep(POLL_INTERVAL_S)
        raise AssertionError(f"{what}: not reached within {timeout_s:.0f}s; last view {last}")

    def wait_full_isr(self, topic, timeout_s=ISR_REJOIN_TIMEOUT_S):
        return self.wait_partitions(
            topic, lambda p: p["leader"] is not None and p["leader"] > 0
            and sorted(p["isr"]) == sorted(p["replicas"]), timeout_s, f"{topic}: every replica in the ISR")
