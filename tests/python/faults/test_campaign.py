"""The fault campaign (issue: network partitions, pauses, quorum loss, churn, full disks).

Every scenario runs a cluster whose nodes are hosts of their own (netns.py), idempotent acks=all
producers and a consumer group, injects one nemesis (nemeses.py), heals it and checks every
acknowledged record (campaign.py). T1–T8 name the multi-node validation plan: election,
replication, read consistency, failover, rejoin, partitions, 5-node quorum, churn.
"""

import pytest

from campaign import assert_outcome, run_scenario
from nemeses import Bridge, Delay, Isolate, Kill9, Loss, OneWay, Pause, RollingRestart, Split

# Longer than the broker session (6 s) and the replica lag limit (10 s), so the cluster acts on it.
HOLD_S = 12.0


def scenario(net_cluster, nodes, name, nemesis, hold_s=HOLD_S):
    with net_cluster(nodes) as (cluster, net):
        outcome = run_scenario(cluster, net, name, nemesis, hold_s)
    assert_outcome(outcome, nemesis)


def test_t1_election_after_metadata_leader_kill(net_cluster):
    scenario(net_cluster, 3, "T1", Kill9("metadata_leader"))


def test_t4_failover_after_partition_leader_kill(net_cluster):
    scenario(net_cluster, 3, "T4", Kill9("partition_leader"))


def test_t5_paused_partition_leader_rejoins(net_cluster):
    scenario(net_cluster, 3, "T5", Pause("partition_leader"), hold_s=15.0)


def test_paused_metadata_leader(net_cluster):
    scenario(net_cluster, 3, "T5", Pause("metadata_leader"), hold_s=15.0)


def test_t6_isolated_metadata_leader(net_cluster):
    scenario(net_cluster, 3, "T6", Isolate("metadata_leader"))


def test_t6_isolated_partition_leader(net_cluster):
    scenario(net_cluster, 3, "T6", Isolate("partition_leader"))


def test_t6_split_majority_minority(net_cluster):
    scenario(net_cluster, 5, "T6", Split())


def test_t6_bridge(net_cluster):
    scenario(net_cluster, 5, "T6", Bridge())


def test_t6_one_way(net_cluster):
    scenario(net_cluster, 3, "T6", OneWay())


def test_packet_loss(net_cluster):
    scenario(net_cluster, 3, "T6", Loss(20))


def test_delay(net_cluster):
    with net_cluster(3) as (cluster, net):
        if not net.delay_supported():
            pytest.skip("this kernel has no tc netem qdisc (CONFIG_NET_SCH_NETEM): delay cannot be injected; "
                        "loss (nftables) is covered by test_packet_loss")
        nemesis = Delay(200)
        outcome = run_scenario(cluster, net, "T6", nemesis, HOLD_S)
    assert_outcome(outcome, nemesis)


def test_t8_rolling_restart(net_cluster):
    scenario(net_cluster, 3, "T8", RollingRestart(), hold_s=0.0)
