"""T7: five nodes, RF 3, min ISR 2. Losing two nodes (the metadata leader among them) keeps the
cluster working; losing three stops what needs a majority or a second replica — with a clear
error within the request's timeout, never a hang — and loses nothing acknowledged; when the
nodes return, everything recovers by itself.

With three of five down, a partition's fate depends on where its replicas are, so the probe topic
is placed by hand around the two survivors a and b (x, y, z are the nodes that will be killed):

    p0 [a, b, x]  led by a, b in sync     appended, but the ISR still names x and no quorum can
                                         shrink it, so the record cannot commit: REQUEST_TIMED_OUT
                                         at the request's timeout (never acknowledged on two copies
                                         while a third ISR member could become leader without it)
    p1 [a, x, y]  led by a, alone         NOT_ENOUGH_REPLICAS at once, once x and y lag past the limit
    p2 [x, a, b]  leader gone, no quorum  to fail it over: no write succeeds
"""

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from campaign import assert_outcome, run_scenario
from chronik_cluster import cli
from checker import start_load, create_rf3_topic, read_back_violations
from kafka_helpers import make_producer, wait_for
from nemeses import KillMany, metadata_leader

PROBE = "quorum-probe"
# CreateTopics' timeout_ms (the client's operation timeout): with no quorum the broker answers
# REQUEST_TIMED_OUT by then. The client's own request timeout is longer so the answer is heard.
OPERATION_TIMEOUT_S = 10.0
CLIENT_REQUEST_TIMEOUT_S = 30.0
METADATA_FAILS_WITHIN_S = OPERATION_TIMEOUT_S + 5.0
# The leader counts a follower out of sync once it lags past replica_lag_time_max_ms (10 s).
LAG_LIMIT_S = 10.0
PROBE_REQUEST_TIMEOUT_MS = 8_000
PROBE_MESSAGE_TIMEOUT_MS = 15_000


def test_t7_five_nodes_lose_two(net_cluster):
    nemesis = KillMany(2)
    with net_cluster(5) as (cluster, net):
        outcome = run_scenario(cluster, net, "T7", nemesis, hold_s=12.0)
    assert_outcome(outcome, nemesis)
    assert outcome.election_s is not None, "no new metadata leader among the three survivors"


def probe_produce(bootstrap, partition):
    """One acks=all record to `partition` of PROBE with no retries; returns the delivery error
    code (None when acknowledged)."""
    result = {}
    p = make_producer(bootstrap, **{"message.timeout.ms": PROBE_MESSAGE_TIMEOUT_MS, "retries": 0,
                                    "request.timeout.ms": PROBE_REQUEST_TIMEOUT_MS, "enable.idempotence": False})
    p.produce(PROBE, value=b"probe", partition=partition,
              on_delivery=lambda err, msg: result.setdefault("err", err))
    p.flush(PROBE_MESSAGE_TIMEOUT_MS / 1000 + 10)
    err = result.get("err", "no delivery report")
    return None if err is None else (err.code() if isinstance(err, KafkaError) else err)


def test_t7_five_nodes_lose_three(net_cluster):
    with net_cluster(5) as (cluster, net):
        meta = metadata_leader(type("Ctx", (), {"cluster": cluster})())
        a, b = [n for n in sorted(cluster.nodes) if n != meta][:2]
        x, y, z = [n for n in sorted(cluster.nodes) if n not in (a, b)]
        create_rf3_topic(cluster, PROBE, assignment=[[a, b, x], [a, x, y], [x, a, b]])
        topic = "t7-lose-three"
        create_rf3_topic(cluster, topic)
        load = start_load(cluster, topic)
        try:
            load.wait_acked(1_000, "before the loss")
            for n in (x, y, z):
                cluster.kill9(n)
            killed_at = time.monotonic()
            survivors_bootstrap = ",".join(cluster.nodes[n].bootstrap for n in (a, b))

            # The survivors notice the leader is gone (an election timeout) and that none can be elected.
            wait_for(lambda: all(cluster.nodes[n].health().get("leader_id") is None for n in (a, b)), 30.0,
                     "the survivors to see no metadata leader")
            # A metadata change fails, clearly and in time.
            admin = AdminClient({"bootstrap.servers": survivors_bootstrap})
            t0 = time.monotonic()
            futures = admin.create_topics([NewTopic("t7-no-quorum", num_partitions=1, replication_factor=1)],
                                          request_timeout=CLIENT_REQUEST_TIMEOUT_S, operation_timeout=OPERATION_TIMEOUT_S)
            with pytest.raises(KafkaException) as refused:
                futures["t7-no-quorum"].result(timeout=CLIENT_REQUEST_TIMEOUT_S + 10)
            took = time.monotonic() - t0
            err = refused.value.args[0]
            print(f"[t7] CreateTopics without quorum failed after {took:.1f}s: {err}")
            assert err.code() == KafkaError.REQUEST_TIMED_OUT, f"want REQUEST_TIMED_OUT from the broker, got {err}"
            assert took <= METADATA_FAILS_WITHIN_S, f"CreateTopics answered after {took:.1f}s"
            # ... and so does a membership change through the operator's CLI: a message, a non-zero exit.
            t0 = time.monotonic()
            rc, out, err = cli("remove-node", z, "--force", "--config", cluster.nodes[a].config_path,
                               timeout_s=METADATA_FAILS_WITHIN_S + 30)
            took = time.monotonic() - t0
            print(f"[t7] remove-node without quorum: exit {rc} after {took:.1f}s: {(err or out).strip()}")
            assert rc != 0 and (err or out).strip(), f"remove-node without quorum: exit {rc}, {out} {err}"
            assert took <= METADATA_FAILS_WITHIN_S, f"remove-node hung {took:.1f}s"

            # acks=all: as many copies as min ISR, or a clear NOT_ENOUGH_REPLICAS.
            time.sleep(max(0.0, LAG_LIMIT_S + 2 - (time.monotonic() - killed_at)))  # the lag limit must pass
            codes = {p: probe_produce(survivors_bootstrap, p) for p in range(3)}
            print(f"[t7] acks=all probes with three of five down: {codes}")
            assert codes[0] == KafkaError.REQUEST_TIMED_OUT, \
                f"p0's ISR names a dead node that no quorum can remove: want REQUEST_TIMED_OUT, got {codes[0]}"
            assert codes[1] == KafkaError.NOT_ENOUGH_REPLICAS, f"p1 has one live copy: want NOT_ENOUGH_REPLICAS, got {codes[1]}"
            assert codes[2] is not None, "p2's leader is down and no quorum can fail it over, yet a write succeeded"

            for n in (x, y, z):
                cluster.nodes[n].start()
            t0 = time.monotonic()
            cluster.wait_agreed_leader()
            print(f"[t7] metadata leader back {time.monotonic() - t0:.1f}s after the restarts")
            cluster.wait_all_live()
            cluster.wait_full_isr(topic)
            cluster.wait_full_isr(PROBE)
            assert probe_produce(cluster.bootstrap, 1) is None, "p1 still refuses acks=all after recovery"
            load.wait_more_acked(1_000, "after recovery")
        finally:
            load.stop()
        violations = read_back_violations(cluster.bootstrap, load, topic)
        assert not violations, "; ".join(violations)
