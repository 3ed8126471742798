"""Kafka's own admin APIs drive Chronik's data-first moves and leader elections (kafka-python's
KafkaAdminClient against four brokers):

- AlterPartitionReassignments moves a replica onto the fourth node while idempotent acks=all producers
  run; ListPartitionReassignments shows the move until the controller completes it; at the end the
  replica list is the target, the ISR is full, no producer saw an error and every acknowledged record
  reads back.
- ElectLeaders (PREFERRED) gives leadership back to the first replica after a restart moved it away
  (the controller's own periodic preferred-leader rule is switched off here, so only the request can
  do it); a second election answers ELECTION_NOT_NEEDED.

The topic is placed by hand, balanced over the four nodes, so the automatic rebalancer has nothing
to do and no move but the test's runs."""

import time

import pytest
from kafka import KafkaAdminClient, TopicPartition
from kafka.errors import ElectionNotNeededError

from chronik_cluster import PARTITION_FAILOVER_TIMEOUT_S, POLL_INTERVAL_S, started_cluster
from checker import create_rf3_topic, read_back_violations, start_load

TOPIC = "admin-apis"
# Six partitions (the load's count), RF 3, balanced over nodes 1-4: 4-5 replicas and 1-2 preferred
# leaderships each.
ASSIGNMENT = [[1, 2, 3], [2, 3, 4], [3, 4, 1], [4, 1, 2], [1, 2, 4], [2, 3, 1]]
MOVED = 0
TARGET = [4, 2, 3]
ACKED_STEP = 1_000
MOVE_DONE_WITHIN_S = 90.0
ELECTION_WITHIN_S = 30.0
ISR_WITHIN_S = 90.0
# No automatic return of leadership to the preferred replica during the test (1 hour).
NO_PREFERRED_REBALANCE_MS = 3_600_000


@pytest.fixture
def cluster4(tmp_path, request):
    with started_cluster(tmp_path / "cluster", request, nodes=4, leader_rebalance_interval_ms=NO_PREFERRED_REBALANCE_MS) as c:
        yield c


def admin_client(cluster):
    return KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30_000)


def wait_until(predicate, timeout_s, what):
    """Polls `predicate` until it returns a truthy value, which is returned; fails at the deadline."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, ValueError, KeyError, AssertionError) as e:
            last = e
        time.sleep(POLL_INTERVAL_S)
    raise AssertionError(f"{what}: not reached within {timeout_s:.0f}s (last: {last!r})")


def test_alter_partition_reassignments_moves_a_replica_under_load(cluster4):
    create_rf3_topic(cluster4, TOPIC, assignment=ASSIGNMENT)
    admin = admin_client(cluster4)
    load = start_load(cluster4, TOPIC)
    tp = TopicPartition(TOPIC, MOVED)
    try:
        load.wait_more_acked(ACKED_STEP, "before the move")
        t0 = time.monotonic()
        result = admin.alter_partition_reassignments({tp: TARGET})
        assert result == {tp: None}, result
        seen_in_progress = []

        def done():
            listed = admin.list_partition_reassignments()
            if tp in listed:
                seen_in_progress.append(listed[tp])
                return False
            p = cluster4.partitions(TOPIC)[MOVED]
            return p if p["replicas"] == TARGET and sorted(p["isr"]) == sorted(TARGET) else False

        final = wait_until(done, MOVE_DONE_WITHIN_S, f"{TOPIC}-{MOVED} moved to {TARGET}")
        took_s = time.monotonic() - t0
        first = seen_in_progress[0] if seen_in_progress else None
        print(f"[admin-apis] reassignment of {TOPIC}-{MOVED} {ASSIGNMENT[MOVED]} -> {TARGET} done in "
              f"{took_s:.1f}s; listed in progress {len(seen_in_progress)} times (first: {first}); "
              f"final {final}")
        if first is not None:
            assert first["adding_replicas"] == [4] and first["removing_replicas"] == [1], first
            assert first["replicas"] == [1, 2, 3, 4], first
        assert final["leader"] in TARGET, final
        load.wait_more_acked(ACKED_STEP, "after the move")
        # A cancel with no move running is refused with Kafka's code; the placement stays.
        from kafka.errors import NoReassignmentInProgressError
        assert admin.alter_partition_reassignments({tp: None}) == {tp: NoReassignmentInProgressError}
    finally:
        load.stop()
        admin.close()
    assert not load.log.errors, f"producer delivery errors: {load.log.errors[:5]}"
    violations = read_back_violations(cluster4.bootstrap, load, TOPIC)
    assert not violations, "\n".join(violations)
    p = cluster4.partitions(TOPIC)[MOVED]
    assert p["replicas"] == TARGET and sorted(p["isr"]) == sorted(TARGET), p


def test_elect_leaders_returns_leadership_to_the_preferred_replica(cluster4):
    create_rf3_topic(cluster4, TOPIC, assignment=ASSIGNMENT)
    raft_leader, _ = cluster4.wait_agreed_leader()
    # A partition whose preferred leader is not the metadata leader (restarting that would also move
    # the controller, which is not what this test is about).
    partition = next(i for i, r in enumerate(ASSIGNMENT) if r[0] != raft_leader)
    preferred = ASSIGNMENT[partition][0]
    admin = admin_client(cluster4)
    try:
        cluster4.kill9(preferred)
        moved = wait_until(lambda: (p := cluster4.partitions(TOPIC)[partition])["leader"] not in (preferred, None, -1) and p,
                           PARTITION_FAILOVER_TIMEOUT_S, f"{TOPIC}-{partition} led by another replica")
        cluster4.restart(preferred)
        back = wait_until(lambda: (p := cluster4.partitions(TOPIC)[partition]) and sorted(p["isr"]) == sorted(p["replicas"]) and p,
                          ISR_WITHIN_S, f"{preferred} back in the ISR of {TOPIC}-{partition}")
        assert back["leader"] != preferred, f"leadership came back without an election: {back}"
        t0 = time.monotonic()
        response = admin.elect_leaders(0, {TOPIC: [partition]})
        [(topic, results)] = [(r[0], r[1]) for r in response.replica_election_results]
        assert topic == TOPIC and [(r[0], r[1]) for r in results] == [(partition, 0)], response
        led = wait_until(lambda: (p := cluster4.partitions(TOPIC)[partition])["leader"] == preferred and p,
                         ELECTION_WITHIN_S, f"{preferred} leads {TOPIC}-{partition} again")
        print(f"[admin-apis] {TOPIC}-{partition}: leader {moved['leader']} after restarting {preferred}; "
              f"elect_leaders PREFERRED gave it back in {time.monotonic() - t0:.2f}s: {led}")
        again = admin.elect_leaders(0, {TOPIC: [partition]})
        codes = [p[1] for r in again.replica_election_results for p in r[1]]
        assert codes == [ElectionNotNeededError.errno], again
    finally:
        admin.close()
