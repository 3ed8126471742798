"""Acknowledged writes survive a broker that is paused, not killed.

A frozen process (SIGSTOP: a long GC pause, a VM stall, a stuck disk) keeps its
sockets and its memory, and when it wakes (SIGCONT) it still believes what it
believed before: that it leads the metadata, which partitions it leads, that nobody
heartbeated for a long time. None of that may cut away what the others acknowledged
meanwhile. Three cases, each under idempotent acks=all load (checker.py):

- partition_leader: a broker that leads partitions but not the metadata;
- metadata_leader: the metadata (Raft) leader, which also leads partitions;
- follower: a broker that leads nothing (it is last in every replica list).

The victim is frozen for PAUSE_S, longer than the broker session (6 s) and the
replica lag limit (10 s), so the others fence it, fail its partitions over and shrink
it out of every ISR while producers go on. Then it resumes, rejoins every ISR, more
records are acknowledged, and every partition is read back and checked record by
record: nothing lost, moved or duplicated.

Whether a stale decision loses records depends on timing (a follower may fetch past
the stale leader's end before it truncates), so from the resume on a watcher also
polls the survivors' metadata for the stale decisions themselves: a survivor fenced,
or the victim made leader of a partition with an ISR of just itself.
"""

import time

import pytest

from chronik_cluster import RAFT_FAILOVER_TIMEOUT_S
from checker import PARTITIONS, create_rf3_topic, read_back_violations, start_load, wait_new_leaders
from stale_watch import StaleDecisionWatch

# How long the victim stays frozen: longer than the session timeout and the replica lag limit.
PAUSE_S = 15.0
ACKED_BEFORE = 2_000
# Acknowledged by the others while the victim is frozen.
ACKED_DURING = 1_000
ACKED_AFTER = 2_000
# How long the watcher keeps looking after the victim is back in every ISR.
WATCH_AFTER_S = 3.0


def choose(cluster, case):
    """(victim, replica assignment or None) for `case`."""
    raft_leader, _ = cluster.wait_agreed_leader()
    others = [i for i in sorted(cluster.nodes) if i != raft_leader]
    if case == "follower":
        victim = others[-1]
        rest = [i for i in sorted(cluster.nodes) if i != victim]
        return victim, [[rest[p % 2], rest[(p + 1) % 2], victim] for p in range(PARTITIONS)]
    if case == "metadata_leader":
        return raft_leader, None
    return None, None  # partition_leader: picked once the topic's leaders are known


@pytest.mark.parametrize("case", ["partition_leader", "metadata_leader", "follower"])
def test_acked_writes_survive_a_paused_broker(cluster, case):
    topic = f"pause-{case.replace('_', '-')}"
    victim, assignment = choose(cluster, case)
    parts = create_rf3_topic(cluster, topic, assignment)
    raft_leader, term = cluster.wait_agreed_leader()
    if victim is None:
        victim = next(p["leader"] for p in parts.values() if p["leader"] != raft_leader)
    led = sorted(i for i, p in parts.items() if p["leader"] == victim)
    if case == "follower":
        assert not led and victim != raft_leader, f"node {victim} should lead nothing: {parts}"
    else:
        assert led, f"node {victim} should lead partitions of {topic}: {parts}"
    survivors = [i for i in cluster.nodes if i != victim]
    node = cluster.nodes[victim]

    load = start_load(cluster, topic)
    timings = {}
    try:
        load.wait_more_acked(ACKED_BEFORE, "before the pause")
        print(f"[cluster-pause] {case}: SIGSTOP node {victim} (leads partitions {led}; "
              f"metadata leader {raft_leader}, term {term})")
        t0 = time.monotonic()
        node.pause()
        try:
            if case == "metadata_leader":
                new_leader, new_term = cluster.wait_agreed_leader(survivors, RAFT_FAILOVER_TIMEOUT_S)
                assert new_leader != victim and new_term > term
                timings["metadata_failover_s"] = time.monotonic() - t0
            if led:
                wait_new_leaders(cluster, topic, victim, f"new leaders for {led} while node {victim} is paused")
                timings["partition_failover_s"] = time.monotonic() - t0
            load.wait_more_acked(ACKED_DURING, f"while node {victim} is paused")
            # The fault itself lasts PAUSE_S: hold it for whatever is left of that.
            time.sleep(max(0.0, PAUSE_S - (time.monotonic() - t0)))
            timings["paused_s"] = time.monotonic() - t0
        finally:
            watch = StaleDecisionWatch(cluster, topic, (victim,), survivors).start()
            node.resume()
        print(f"[cluster-pause] {case}: SIGCONT node {victim} after {time.monotonic() - t0:.1f}s")
        t1 = time.monotonic()
        try:
            cluster.wait_agreed_leader()
            cluster.wait_full_isr(topic)
            timings["back_in_every_isr_s"] = time.monotonic() - t1
            load.wait_more_acked(ACKED_AFTER, f"after node {victim} resumed")
            time.sleep(max(0.0, WATCH_AFTER_S - (time.monotonic() - t1)))
        finally:
            stale = watch.stop()
    finally:
        load.stop()
    print(f"[cluster-pause] {case}: timings {({k: round(v, 1) for k, v in timings.items()})}")
    violations = read_back_violations(cluster.bootstrap, load, topic)
    print(f"[cluster-pause] {case}: stale decisions seen after the resume: {len(stale)}")
    violations += [f"stale decision applied: {s}" for s in stale]
    assert not violations, f"{case} (node {victim} paused):\n" + "\n".join(violations)
