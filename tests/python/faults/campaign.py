"""One scenario of the fault campaign: load, nemesis, heal, recovery, check record by record.

    run_scenario(cluster, net, "T6", Isolate("metadata_leader"), hold_s=12)

1. a topic of 6 partitions × RF 3; idempotent acks=all producers (checker.start_load) and a
   consumer group of two (group_reader.GroupReader) start;
2. once ACKED_BEFORE records are acknowledged, the nemesis is injected and held `hold_s`;
   meanwhile the recovery the fault calls for is timed: a new metadata leader among the nodes
   the fault left (election), no partition led by a victim (partition failover);
3. the nemesis heals; every node must be live and every partition back to its full ISR
   (catch-up), and ACKED_AFTER more records acknowledged; where clients still reach a cut-off
   victim, one acks=all record per partition it believes it leads is offered to it and must not be
   acknowledged, and from the heal on a watch looks for stale controller decisions applied
   (stale_watch.py);
4. the load stops; every partition is read back and checked record by record (checker.check)
   and the group must have read and committed every acknowledged record.

Each scenario prints one line: nemesis, duration, records sent/acked/found, violations and the
recovery times; `Outcome` carries the same for the soak's table (scripts/faults).
"""

import dataclasses
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import KafkaError  # noqa: E402

from checker import check, create_rf3_topic, start_load  # noqa: E402
from crash_load import read_whole_topic  # noqa: E402
from group_reader import GroupReader  # noqa: E402
from kafka_helpers import make_producer  # noqa: E402
from stale_watch import StaleDecisionWatch  # noqa: E402

ACKED_BEFORE = 1_000
ACKED_AFTER = 1_000
# What the cluster must do (issue contract): a new metadata leader within 10 s of losing one.
ELECTION_WITHIN_S = 10.0
# Partition leaders move once the victim's broker session (6 s) ends; slack for a busy machine.
FAILOVER_WITHIN_S = 30.0
RECOVERY_WITHIN_S = 120.0
POLL_S = 0.1
# The stale-leader probe: one acks=all record per partition a cut-off victim believes it leads.
PROBE_REQUEST_TIMEOUT_MS = 5_000
PROBE_MESSAGE_TIMEOUT_MS = 8_000
# How long the stale-decision watch goes on after recovery.
WATCH_AFTER_S = 2.0


@dataclasses.dataclass
class Context:
    cluster: object
    net: object
    topic: str


@dataclasses.dataclass
class Outcome:
    scenario: str
    nemesis: str
    duration_s: float
    sent: int
    acked: int
    found: int
    violations: list
    election_s: float = None
    failover_s: float = None
    catch_up_s: float = None
    expected_election: bool = False
    expected_failover: bool = False

    def line(self):
        def t(v):
            return "-" if v is None else f"{v:.1f}s"
        return (f"[campaign] {self.scenario} {self.nemesis}: {self.duration_s:.1f}s sent={self.sent} "
                f"acked={self.acked} found={self.found} violations={len(self.violations)} "
                f"election={t(self.election_s)} failover={t(self.failover_s)} catch-up={t(self.catch_up_s)}")


def survivors(ctx, nemesis):
    return [n for n in sorted(ctx.cluster.nodes) if n not in nemesis.victims]


def _leader_among(ctx, nodes, not_in):
    """The metadata leader the nodes in `nodes` agree on, when it is one of them and not in `not_in`."""
    views = []
    for n in nodes:
        try:
            views.append(ctx.cluster.nodes[n].health())
        except (OSError, ValueError):
            return None
    leaders = {h.get("leader_id") for h in views}
    if len(leaders) != 1:
        return None
    leader = leaders.pop()
    return leader if leader in nodes and leader not in not_in else None


def _victims_lead_nothing(ctx, nodes, victims):
    """Whether the survivors' leader lists no partition of the topic as led by a victim."""
    leader = _leader_among(ctx, nodes, victims)
    if leader is None:
        return False
    try:
        status = ctx.cluster.nodes[leader].status()
    except (OSError, ValueError):
        return False
    parts = [p for p in status["partitions"] if p["topic"] == ctx.topic]
    return bool(parts) and all(p["leader"] not in victims and p["leader"] > 0 for p in parts)


def hold_and_time(ctx, nemesis, hold_s):
    """Holds the fault while timing the election and failover it calls for; returns (election_s,
    failover_s, election expected, failover expected), a time None where none happened."""
    t0 = time.monotonic()
    left = survivors(ctx, nemesis)
    majority = len(left) > len(ctx.cluster.nodes) // 2
    want_election = nemesis.hits_metadata_leader and majority
    want_failover = bool(nemesis.victims) and majority
    election = failover = None
    # The fault lasts at least `hold_s`, and longer while a recovery it calls for is still pending
    # (up to FAILOVER_WITHIN_S), so every scenario measures the recoveries it should see.
    while True:
        elapsed = time.monotonic() - t0
        pending = (want_election and election is None) or (want_failover and failover is None)
        if elapsed >= hold_s and (not pending or elapsed >= FAILOVER_WITHIN_S):
            break
        if want_election and election is None and _leader_among(ctx, left, nemesis.victims):
            election = time.monotonic() - t0
        if want_failover and failover is None and _victims_lead_nothing(ctx, left, nemesis.victims):
            failover = time.monotonic() - t0
        time.sleep(POLL_S)
    return election, failover, want_election, want_failover


def probe_stale_leaders(ctx, nemesis):
    """Offers one acks=all record to every partition a cut-off victim still believes it leads, from
    a client on the victim's own host (it reaches what the victim reaches: its side of the cut, not
    the new leaders); returns the violations (a record acknowledged by a node that cannot reach the
    rest of its ISR or the metadata quorum). The victims are probed at the same time."""
    out = []

    def probe(v):
        try:
            status = ctx.cluster.nodes[v].status()
        except (OSError, ValueError):
            return
        led = [p["partition"] for p in status["partitions"] if p["topic"] == ctx.topic and p["leader"] == v]
        if not led:
            return
        acked = []
        with ctx.net.entered(node_id=v):
            producer = make_producer(ctx.cluster.nodes[v].bootstrap, **{
                "retries": 0, "enable.idempotence": False, "request.timeout.ms": PROBE_REQUEST_TIMEOUT_MS,
                "message.timeout.ms": PROBE_MESSAGE_TIMEOUT_MS})
            for p in led:
                producer.produce(ctx.topic, value=f"stale-probe-{v}-{p}".encode(), partition=p,
                                 on_delivery=lambda err, msg: acked.append(msg.partition()) if err is None else None)
            producer.flush(PROBE_MESSAGE_TIMEOUT_MS / 1000 + 5)
            del producer  # its threads live in the victim's network namespace: end them here
        print(f"[campaign] stale-leader probe: node {v} believes it leads {led}; acknowledged {acked}")
        if acked:
            out.append(f"cut-off node {v} acknowledged acks=all writes to partitions {acked}")

    threads = [threading.Thread(target=probe, args=(v,), name=f"stale-probe-{v}") for v in nemesis.victims]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=PROBE_MESSAGE_TIMEOUT_MS / 1000 + 30)
    return out


def wait_recovered(ctx):
    """Until every node is live and every partition of the topic has its full ISR; seconds taken."""
    t0 = time.monotonic()
    ctx.cluster.wait_agreed_leader(timeout_s=RECOVERY_WITHIN_S)
    ctx.cluster.wait_all_live(timeout_s=RECOVERY_WITHIN_S)
    ctx.cluster.wait_full_isr(ctx.topic, timeout_s=RECOVERY_WITHIN_S)
    return time.monotonic() - t0


def run_scenario(cluster, net, scenario, nemesis, hold_s, topic=None, during=None):
    """The whole scenario of the module docstring. Returns the Outcome (violations listed, not raised).
    `during(ctx)`, when given, runs while the fault holds (after the hold, before healing) and returns
    violations of its own."""
    topic = topic or f"{scenario.lower()}-{nemesis.name}".replace(" ", "").replace("|", "-").replace(
        "[", "").replace("]", "").replace(",", "-").replace("%", "pct").replace("+", "-")
    ctx = Context(cluster, net, topic)
    create_rf3_topic(cluster, topic)
    t_start = time.monotonic()
    load = start_load(cluster, topic)
    group = GroupReader(cluster.bootstrap, topic, f"{topic}-readers").start()
    healed = False
    stale, watch = [], None
    try:
        load.wait_acked(ACKED_BEFORE, "before the fault")
        nemesis.inject(ctx)
        try:
            election, failover, want_election, want_failover = hold_and_time(ctx, nemesis, hold_s)
            if nemesis.clients_reach_victims:
                stale += probe_stale_leaders(ctx, nemesis)
            if during is not None:
                stale += during(ctx)
        finally:
            if nemesis.hits_metadata_leader and nemesis.victims:
                watch = StaleDecisionWatch(ctx.cluster, topic, nemesis.victims, survivors(ctx, nemesis)).start()
            nemesis.heal(ctx)
            healed = True
        catch_up = wait_recovered(ctx)
        load.wait_more_acked(ACKED_AFTER, "after healing")
        if watch is not None:
            time.sleep(max(0.0, WATCH_AFTER_S - catch_up))
    finally:
        if not healed:
            nemesis.heal(ctx)
        if watch is not None:
            stale += [f"stale decision applied: {s}" for s in watch.stop()]
        load.stop()
    logs, _ = read_whole_topic(cluster.bootstrap, topic, 6)
    violations = check(load, logs) + stale
    group.drain(load)
    violations += group.violations(load)
    if load.fatal:
        violations.append(f"fatal producer errors: {load.fatal[:3]}")
    acked = dict(load.log.acked)
    in_log = {v for recs in logs.values() for _, v in recs}
    outcome = Outcome(scenario, nemesis.name, time.monotonic() - t_start, sum(load.sent), len(acked),
                      sum(1 for v in acked if v in in_log), violations, election, failover, catch_up,
                      want_election, want_failover)
    print(outcome.line())
    return outcome


def assert_outcome(outcome, nemesis):
    """The contract every scenario holds to: nothing violated, elections within 10 s."""
    assert not outcome.violations, f"{outcome.scenario} {nemesis.name}: " + "; ".join(outcome.violations)
    if outcome.expected_election:
        assert outcome.election_s is not None and outcome.election_s <= ELECTION_WITHIN_S, \
            f"{outcome.scenario}: no new metadata leader within {ELECTION_WITHIN_S:.0f}s: {outcome.election_s}"
    if outcome.expected_failover:
        assert outcome.failover_s is not None, \
            f"{outcome.scenario}: partitions still led by {nemesis.victims} after {FAILOVER_WITHIN_S:.0f}s"
