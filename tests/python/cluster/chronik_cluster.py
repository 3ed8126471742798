"""Start, kill -9 and restart a multi-node chronik-server cluster for tests.

Every node gets free loopback ports, its own config listing every peer, its own
data dir and log under one work dir; nodes are stopped by PID, never by name.
The cluster's own view comes from the admin API (/admin/health, /admin/status).
"""

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chronik_broker import Broker, admin_get, binary_path  # noqa: E402

# Deadlines (seconds).
CLUSTER_READY_TIMEOUT_S = 90.0
RAFT_FAILOVER_TIMEOUT_S = 30.0
# The contract is 10 s from kill -9 to new partition leaders; the slack covers a busy CI machine.
PARTITION_FAILOVER_TIMEOUT_S = 30.0
ISR_REJOIN_TIMEOUT_S = 90.0
POLL_INTERVAL_S = 0.2

# Cluster settings of the cluster tests: RF 3, min ISR 2, the default session and lag limits.
DEFAULT_SETTINGS = {
    "replication_factor": 3,
    "min_insync_replicas": 2,
    "broker_session_timeout_ms": 6000,
    "broker_heartbeat_interval_ms": 1000,
    "replica_lag_time_max_ms": 10000,
    "leader_rebalance_interval_ms": 5000,
}


class ClusterNode(Broker):
    """One node: a Broker (same spawn, readiness wait, kill -9 and stop by PID) whose
    config lists every peer (written by Cluster)."""

    # Serving the admin API and Kafka port is enough: a fresh node waits for its peers,
    # and a restarted one may not know the leader yet ("status": "no_leader").
    needs_leader = False
    ready_timeout_s = CLUSTER_READY_TIMEOUT_S

    @property
    def name(self):
        return f"node {self.node_id}"

    def write_cluster_config(self, peers, settings):
        self.write_config({"auto_create_topics": True, "group_initial_rebalance_delay_ms": 0,
                           **settings}, peers=peers)

    def status(self):
        return admin_get(self.admin_addr, "/admin/status")

    def wait_status(self, want, timeout_s=CLUSTER_READY_TIMEOUT_S):
        """Until /admin/health says `want` ("ok", "waiting_to_join", ...); returns the health."""
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            if not self.is_running():
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}\n" + self.log_tail())
            try:
                last = self.health()
                if last.get("status") == want:
                    return last
            except (OSError, ValueError):
                pass
            time.sleep(POLL_INTERVAL_S)
        raise AssertionError(f"{self.name}: health not {want!r} within {timeout_s:.0f}s; last {last}")


def cli(*args, token=None, timeout_s=120):
    """Run `chronik-server cluster ARGS...`; returns (exit code, stdout, stderr)."""
    env = None
    if token is not None:
        import os
        env = dict(os.environ, CHRONIK_ADMIN_TOKEN=token)
    r = subprocess.run([str(binary_path()), "cluster", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout_s, env=env)
    return r.returncode, r.stdout, r.stderr


def cli_json(*args, **kw):
    """`cli(..., --json)` that must succeed; returns the parsed answer."""
    rc, out, err = cli(*args, "--json", **kw)
    assert rc == 0, f"chronik-server cluster {' '.join(map(str, args))} exited {rc}: {err.strip()}"
    return json.loads(out)


class Cluster:
    def __init__(self, workdir, nodes=3, first_id=1, **settings):
        self.workdir = Path(workdir)
        self.settings = dict(DEFAULT_SETTINGS, **settings)
        self.nodes = {i: self.make_node(i) for i in range(first_id, first_id + nodes)}
        self.initial_ids = list(self.nodes)
        for n in self.nodes.values():
            n.write_cluster_config(self.nodes.values(), self.settings)

    def make_node(self, node_id):
        """A ClusterNode on free loopback ports (faults/netcluster.py places nodes on hosts of their own)."""
        return ClusterNode(self.workdir / f"node-{node_id}", node_id=node_id)

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.nodes.values())

    def running(self):
        """Nodes whose process runs and is not paused (a paused one answers nothing)."""
        return [i for i, n in self.nodes.items() if n.is_running() and not n.paused]

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

    def new_node(self, node_id, join=False):
        """A node that is not part of the initial cluster: its config lists every node known so far
        and itself, `initial_cluster` the first nodes (so it never founds a cluster of its own), and
        `join` to ask the cluster itself. Created, not started."""
        n = self.make_node(node_id)
        self.nodes[node_id] = n
        settings = dict(self.settings, initial_cluster=sorted(self.initial_ids), join=join)
        n.write_cluster_config(self.nodes.values(), settings)
        return n

    def add_args(self, node_id):
        """The `cluster add-node` arguments of node `node_id`'s addresses."""
        n = self.nodes[node_id]
        return [node_id, "--kafka", f"{n.host}:{n.kafka_port}", "--wal", f"{n.host}:{n.wal_port}",
                "--raft", f"{n.host}:{n.raft_port}", "--node-admin", n.admin_addr]

    def health_views(self, ids=None):
        """{node: /admin/health} of the running nodes (or `ids`)."""
        return {i: self.nodes[i].health() for i in (ids or self.running())}

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


@contextlib.contextmanager
def started_cluster(workdir, request=None, **settings):
    """A started Cluster (see Cluster for `settings`), stopped by PID on the way out. Every node's
    log tail is printed when the start fails, when the block raises, or — for a pytest fixture that
    passes its `request` — when the test failed."""
    c = Cluster(workdir, **settings)
    try:
        c.start()
    except BaseException:
        print(c.log_tails(), file=sys.stderr)
        c.stop()
        raise
    try:
        yield c
    except BaseException:
        print(c.log_tails(), file=sys.stderr)
        raise
    finally:
        c.stop()
        report = getattr(request.node, "rep_call", None) if request is not None else None
        if report is not None and report.failed:
            print(c.log_tails(), file=sys.stderr)

