"""Removing a node that holds replicas drains it first: `cluster remove-node 3 --wait` marks node 3
draining, the rebalancer moves its replicas to the other nodes (data first), and only then does the
controller remove it from the membership. Idempotent acks=all producers run throughout; nothing
acknowledged is lost, no ISR falls below min ISR, and node 3 is a member for as long as any partition
still lists it."""

import time

from chronik_cluster import cli, cli_json
from checker import create_rf3_topic, read_back_violations, start_load
from sampling import Sampler
from test_rebalance import IsrSampler

TOPIC = "drain"
MIN_ISR = 2
ACKED_STEP = 1_000
LEAVING = 3
DRAINED_WITHIN_S = 180


class MembershipSampler(Sampler):
    """Samples the metadata leader's status: whether node LEAVING is still a member and how many
    replicas the partitions still place on it. Keeps every (member, replicas) pair seen."""

    def __init__(self, cluster, ids):
        super().__init__()
        self.cluster, self.ids = cluster, ids
        self.seen = set()

    def sample(self):
        leader, _ = self.cluster.wait_agreed_leader(self.ids, timeout_s=5)
        status = self.cluster.nodes[leader].status()
        member = any(n["id"] == LEAVING for n in status["nodes"])
        held = sum(LEAVING in p["replicas"] for p in status["partitions"])
        self.seen.add((member, held))


def test_a_node_removed_under_load_drains_first(cluster):
    create_rf3_topic(cluster, TOPIC)
    leader, _ = cluster.wait_agreed_leader()
    cfg = cluster.nodes[leader].config_path
    load = start_load(cluster, TOPIC)
    staying = [1, 2, 4]
    try:
        load.wait_more_acked(ACKED_STEP, "before the addition")
        # A fourth node first, so three replicas of every partition fit without node 3.
        node4 = cluster.new_node(4)
        node4.spawn()
        cli_json("add-node", *cluster.add_args(4), "--config", cfg)
        node4.wait_status("ok")
        with IsrSampler(cluster, TOPIC) as isr, MembershipSampler(cluster, staying) as members:
            t0 = time.monotonic()
            rc, out, err = cli("remove-node", LEAVING, "--wait", "--config", cfg, timeout_s=DRAINED_WITHIN_S)
            drained_s = time.monotonic() - t0
            print(f"[drain] remove-node {LEAVING} --wait: rc={rc} after {drained_s:.1f}s\n{out}{err}")
            assert rc == 0, f"remove-node exited {rc}: {out} {err}"
            assert "draining" in out and "removed" in out, out
            load.wait_more_acked(ACKED_STEP, "after the removal")
        cluster.nodes[LEAVING].stop()
        del cluster.nodes[LEAVING]
        status = cluster.leader_status()
        assert LEAVING not in {n["id"] for n in status["nodes"]}, status["nodes"]
        for p in status["partitions"]:
            assert LEAVING not in p["replicas"] and len(p["replicas"]) == 3, p
        print(f"[drain] samples (member, replicas left): {sorted(members.seen)}; smallest ISR seen {isr.smallest}")
        assert any(member and held > 0 for member, held in members.seen), "the drain was never observed"
        assert not any(not member and held > 0 for member, held in members.seen), \
            f"node {LEAVING} left the membership while partitions still listed it: {sorted(members.seen)}"
        assert isr.smallest is not None and isr.smallest >= MIN_ISR, f"an ISR fell to {isr.smallest}"
    finally:
        load.stop()
    violations = read_back_violations(cluster.bootstrap, load, TOPIC)
    assert not violations, "\n".join(violations)
    members_now = cli_json("members", "--config", cluster.nodes[1].config_path)
    print(f"[drain] members after: {members_now}")
