"""The rebalancer: after a fourth node joins, replicas and leaderships spread onto it, data first,
while idempotent acks=all producers and a consumer group of two run; nothing acknowledged is lost,
no ISR falls below min ISR on the way, and the group reads every record once its commits are taken
into account. A dry run on a balanced cluster plans nothing and changes nothing. A controller
killed in the middle of a move is succeeded by one that finishes the rebalance (the moves in progress
are in the metadata; the rest is planned again)."""

import collections
import time

from chronik_cluster import cli, cli_json
from checker import create_rf3_topic, read_back_violations, start_load
from group_reader import GroupReader
from sampling import Sampler

TOPIC = "rebalance"
MIN_ISR = 2
ACKED_STEP = 1_000
PLAN_STARTS_WITHIN_S = 30.0
BALANCED_WITHIN_S = 120.0


def spread(status, topic):
    """(replicas per node, preferred leaderships per node, actual leaderships, moves in progress)."""
    replicas, preferred, leaders = collections.Counter(), collections.Counter(), collections.Counter()
    moving = 0
    for p in status["partitions"]:
        if p["topic"] != topic:
            continue
        replicas.update(p["replicas"])
        preferred[p["replicas"][0]] += 1
        leaders[p["leader"]] += 1
        moving += bool(p.get("adding_replicas") or p.get("removing_replicas"))
    return replicas, preferred, leaders, moving


class IsrSampler(Sampler):
    """Samples the leader's view of every partition's ISR until stopped; keeps the smallest seen."""

    def __init__(self, cluster, topic):
        super().__init__()
        self.cluster, self.topic = cluster, topic
        self.smallest = None

    def sample(self):
        for p in self.cluster.partitions(self.topic).values():
            n = len(p["isr"])
            self.smallest = n if self.smallest is None else min(self.smallest, n)


def test_a_fourth_node_takes_its_share_under_load(cluster):
    create_rf3_topic(cluster, TOPIC)
    leader, _ = cluster.wait_agreed_leader()
    cfg = cluster.nodes[leader].config_path
    rc, out, err = cli("rebalance", "--dry-run", "--config", cfg)
    assert rc == 0 and "no moves" in out, f"a balanced cluster: rc={rc} {out} {err}"

    load = start_load(cluster, TOPIC)
    group = GroupReader(cluster.bootstrap, TOPIC, "rebalance-readers").start()
    try:
        with IsrSampler(cluster, TOPIC) as isr:
            load.wait_more_acked(ACKED_STEP, "before the addition")
            node4 = cluster.new_node(4)
            node4.spawn()
            cli_json("add-node", *cluster.add_args(4), "--config", cfg)
            node4.wait_status("ok")
            t0 = time.monotonic()
            plan = cli_json("rebalance", "--dry-run", "--config", cfg)
            print(f"[rebalance] plan after the addition: {plan['message']}")
            deadline = t0 + PLAN_STARTS_WITHIN_S
            while time.monotonic() < deadline:
                replicas, _, _, moving = spread(cluster.leader_status(), TOPIC)
                if moving or replicas.get(4):
                    break
                time.sleep(0.2)
            started_s = time.monotonic() - t0
            assert moving or replicas.get(4), f"no move started within {PLAN_STARTS_WITHIN_S:.0f}s"
            deadline = t0 + BALANCED_WITHIN_S
            while time.monotonic() < deadline:
                replicas, preferred, leaders, moving = spread(cluster.leader_status(), TOPIC)
                if not moving and all(4 <= replicas[n] <= 5 and 1 <= leaders[n] <= 2 for n in (1, 2, 3, 4)):
                    break
                time.sleep(0.5)
            balanced_s = time.monotonic() - t0
            print(f"[rebalance] first move within {started_s:.1f}s, balanced after {balanced_s:.1f}s: "
                  f"replicas {dict(replicas)}, preferred {dict(preferred)}, leaders {dict(leaders)}, "
                  f"smallest ISR seen {isr.smallest}")
            assert not moving and all(4 <= replicas[n] <= 5 for n in (1, 2, 3, 4)), (replicas, moving)
            assert all(1 <= leaders[n] <= 2 for n in (1, 2, 3, 4)), leaders
            load.wait_more_acked(ACKED_STEP, "after the rebalance")
    finally:
        load.stop()
    group.drain(load)
    print(f"[rebalance] consumer group: {group.summary()}")
    group_violations = group.violations(load)
    assert not group_violations, "\n".join(group_violations)
    assert isr.smallest is not None and isr.smallest >= MIN_ISR, f"an ISR fell to {isr.smallest}"
    violations = read_back_violations(cluster.bootstrap, load, TOPIC)
    assert not violations, "\n".join(violations)
    rc, out, _ = cli("rebalance", "--dry-run", "--config", cfg)
    assert rc == 0 and "no moves" in out, out


def test_a_controller_killed_mid_rebalance_is_succeeded_by_one_that_finishes(cluster):
    create_rf3_topic(cluster, TOPIC)
    leader, term = cluster.wait_agreed_leader()
    load = start_load(cluster, TOPIC)
    try:
        load.wait_more_acked(ACKED_STEP, "before the addition")
        node4 = cluster.new_node(4)
        node4.spawn()
        cli_json("add-node", *cluster.add_args(4), "--config", cluster.nodes[leader].config_path)
        node4.wait_status("ok")
        deadline = time.monotonic() + PLAN_STARTS_WITHIN_S
        moving = 0
        while time.monotonic() < deadline and not moving:
            _, _, _, moving = spread(cluster.leader_status(), TOPIC)
            time.sleep(0.05)
        assert moving, "no move started"
        cluster.kill9(leader)
        survivors = [i for i in cluster.nodes if i != leader]
        new_leader, new_term = cluster.wait_agreed_leader(survivors, 30)
        assert new_leader != leader and new_term > term
        cluster.restart(leader)
        deadline = time.monotonic() + BALANCED_WITHIN_S
        while time.monotonic() < deadline:
            replicas, _, leaders, moving = spread(cluster.leader_status(), TOPIC)
            if not moving and all(4 <= replicas[n] <= 5 and 1 <= leaders[n] <= 2 for n in (1, 2, 3, 4)):
                break
            time.sleep(0.5)
        print(f"[rebalance] after killing controller {leader} mid-move, controller {new_leader} finished: "
              f"replicas {dict(replicas)}, leaders {dict(leaders)}")
        assert not moving and all(4 <= replicas[n] <= 5 for n in (1, 2, 3, 4)), (replicas, moving)
        load.wait_more_acked(ACKED_STEP, "after the rebalance")
    finally:
        load.stop()
    violations = read_back_violations(cluster.bootstrap, load, TOPIC)
    assert not violations, "\n".join(violations)
