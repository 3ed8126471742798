"""A consumer group under membership changes while a producer keeps writing.

Three kafka-python members share a 6-partition topic; one leaves and a fourth joins
mid-stream. At the end every acknowledged record was consumed, each checkpoint
generation's assignment covers all 6 partitions with no partition owned twice, and
a record is seen twice only if the two reads were in different generations (the
re-delivery a rebalance may cause), never within one.
"""

import collections
import threading
import time

import pytest
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaError

from kafka_helpers import DeliveryLog, create_topic, make_producer, wait_for

PARTITIONS = 6
ALL_PARTITIONS = set(range(PARTITIONS))
GROUP = "harness-group"
TOPIC = "group-stream"
STABLE_TIMEOUT_S = 60.0
METADATA_MAX_AGE_MS = 1_000
DRAIN_TIMEOUT_S = 120.0
# Progress each phase must show (records consumed) before the next change.
RECORDS_PER_PHASE = 2_000
PRODUCER_PAUSE_S = 0.001


class Member:
    """One group member consuming in its own thread and logging what it saw."""

    def __init__(self, name, bootstrap, sink):
        self.name = name
        self.sink = sink  # shared Observations
        self.stop = threading.Event()
        self.left = False
        self.error = None
        self.commit_failures = []  # commits refused because a rebalance started (legal)
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=GROUP, client_id=name,
            enable_auto_commit=False, auto_offset_reset="earliest",
            heartbeat_interval_ms=500, session_timeout_ms=10_000,
            # kafka-python 3.0.12 can drop the metadata refresh its subscribe() asks for (the race
            # in tests/kafka-python-suite/client-race.txt): a member then knows no partition of the
            # topic, a leader assigns nothing, and the group stays without a full assignment until
            # the 5-minute metadata age. A short age makes the client ask again within a second.
            metadata_max_age_ms=METADATA_MAX_AGE_MS)
        self.consumer.subscribe([TOPIC], listener=_Listener(self))
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def generation(self):
        # Read without the coordinator's lock: the listener runs inside poll().
        return self.consumer._coordinator._generation.generation_id

    def _run(self):
        try:
            while not self.stop.is_set():
                batch = self.consumer.poll(timeout_ms=200)
                if not batch:
                    continue
                gen = self.generation()
                for tp, recs in batch.items():
                    for r in recs:
                        self.sink.consumed(self.name, gen, tp.partition, r.offset, r.value)
                # Commit what we processed before the next poll can rebalance. A commit can
                # be refused when a rebalance has begun (CommitFailedError and kin): the
                # records since the last commit are then re-read in the next generation.
                try:
                    self.consumer.commit()
                except KafkaError as e:
                    self.commit_failures.append(repr(e))
        except Exception as e:  # surfaced by the test
            self.error = e

    def leave(self):
        """Stop consuming and leave the group (LeaveGroup on close)."""
        if self.left:
            return
        self.left = True
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), f"{self.name} did not stop"
        self.consumer.close()
        assert self.error is None, f"{self.name} failed: {self.error!r}"


class _Listener(ConsumerRebalanceListener):
    def __init__(self, member):
        self.member = member

    def on_partitions_revoked(self, revoked):
        pass

    def on_partitions_assigned(self, assigned):
        m = self.member
        m.sink.assigned(m.name, m.generation(), {tp.partition for tp in assigned})


class Observations:
    def __init__(self):
        self.lock = threading.Lock()
        self.reads = collections.defaultdict(list)  # value -> [(member, gen, partition, offset)]
        self.total_reads = 0
        self.assignments = collections.defaultdict(dict)  # gen -> {member: partitions}
        self.current = {}  # member -> (gen, partitions)

    def consumed(self, member, gen, partition, offset, value):
        with self.lock:
            self.reads[value].append((member, gen, partition, offset))
            self.total_reads += 1

    def assigned(self, member, gen, partitions):
        with self.lock:
            self.assignments[gen][member] = partitions
            self.current[member] = (gen, partitions)

    def consumed_values(self):
        with self.lock:
            return set(self.reads)

    def read_count(self):
        with self.lock:
            return self.total_reads

    def stable_generation(self, members):
        """(generation,) if all `members` share one with a full, disjoint assignment, else None.

        A tuple, so generation 0 still counts as found for wait_for()."""
        with self.lock:
            states = [self.current.get(m.name) for m in members]
        if any(s is None for s in states):
            return None
        gens = {g for g, _ in states}
        if len(gens) != 1:
            return None
        if any(m.generation() != next(iter(gens)) for m in members):
            return None
        union = set().union(*(p for _, p in states))
        if union != ALL_PARTITIONS or sum(len(p) for _, p in states) != PARTITIONS:
            return None
        return (next(iter(gens)),)


def _produce_until(stop, bootstrap, log, produced):
    producer = make_producer(bootstrap)
    i = 0
    while not stop.is_set():
        value = f"rec-{i:08d}".encode()
        try:
            producer.produce(TOPIC, value=value, partition=i % PARTITIONS, on_delivery=log.callback)
            produced.append(value)
            i += 1
        except BufferError:
            producer.poll(0.05)
        producer.poll(0)
        time.sleep(PRODUCER_PAUSE_S)
    producer.flush(60)


@pytest.mark.timeout(600)
def test_group_membership_changes_lose_nothing(broker):
    create_topic(broker.bootstrap, TOPIC, partitions=PARTITIONS)
    obs = Observations()
    log = DeliveryLog()
    produced = []
    stop_producer = threading.Event()
    prod_thread = threading.Thread(target=_produce_until,
                                   args=(stop_producer, broker.bootstrap, log, produced), daemon=True)
    prod_thread.start()

    members = []
    everyone = []  # every member ever started, for cleanup when the test fails midway
    checkpoints = []
    try:
        _run_phases(broker, obs, log, produced, stop_producer, prod_thread, members, everyone,
                    checkpoints)
    finally:
        for m in everyone:
            m.stop.set()
    _check(obs, log, produced, checkpoints, everyone)


def _run_phases(broker, obs, log, produced, stop_producer, prod_thread, members, everyone,
                checkpoints):
    try:
        def settle(live, label):
            (gen,) = wait_for(lambda: obs.stable_generation(live), STABLE_TIMEOUT_S,
                              f"stable group ({label}) with {len(live)} members")
            for m in live:
                assert m.error is None, f"{m.name} failed: {m.error!r}"
            checkpoints.append((label, gen, len(live)))
            start = obs.read_count()
            wait_for(lambda: obs.read_count() >= start + RECORDS_PER_PHASE, STABLE_TIMEOUT_S,
                     f"{RECORDS_PER_PHASE} records consumed after {label}")
            print(f"[group] {label}: generation {gen}, {len(live)} members, reads so far {obs.read_count()}")
            return gen

        members.extend(Member(f"m{i}", broker.bootstrap, obs) for i in range(3))
        everyone.extend(members)
        settle(members, "three members")

        leaver = members.pop(0)
        leaver.leave()
        settle(members, "after m0 left")

        members.append(Member("m3", broker.bootstrap, obs))
        everyone.append(members[-1])
        settle(members, "after m3 joined")
    finally:
        stop_producer.set()
        prod_thread.join(timeout=90)

    assert not prod_thread.is_alive(), "producer did not finish flushing"
    assert not log.errors, f"{len(log.errors)} delivery errors, first: {log.errors[:3]}"
    acked = set(log.acked)
    wait_for(lambda: acked.issubset(obs.consumed_values()), DRAIN_TIMEOUT_S,
             f"all {len(acked)} acked records to be consumed")
    for m in members:
        m.leave()


def _check(obs, log, produced, checkpoints, everyone):
    acked = set(log.acked)
    commit_failures = [f for m in everyone for f in m.commit_failures]
    print(f"[group] commits refused during rebalances: {len(commit_failures)} {commit_failures[:3]}")

    # Every generation's assignments are disjoint; checkpoint generations cover all partitions.
    for gen, by_member in sorted(obs.assignments.items()):
        owned = [p for parts in by_member.values() for p in parts]
        print(f"[group] generation {gen}: {dict(sorted(by_member.items()))}")
        assert len(owned) == len(set(owned)), f"generation {gen}: a partition has two owners: {by_member}"
    for label, gen, n in checkpoints:
        union = set().union(*obs.assignments[gen].values())
        assert union == ALL_PARTITIONS, f"{label}: generation {gen} covers {sorted(union)}"
        assert len(obs.assignments[gen]) == n, f"{label}: generation {gen} members {obs.assignments[gen]}"
    gens = [g for _, g, _ in checkpoints]
    assert gens == sorted(set(gens)), f"checkpoint generations must increase: {gens}"

    # No loss; no record of another; duplicates only across generations.
    missing = acked - obs.reads.keys()
    unknown = set(obs.reads) - set(produced)
    dup_values = {v: r for v, r in obs.reads.items() if len(r) > 1}
    same_gen_dups = {v: r for v, r in dup_values.items()
                     if len({gen for _, gen, _, _ in r}) < len(r)}
    print(f"[group] produced={len(produced)} acked={len(acked)} consumed_distinct={len(obs.reads)} "
          f"reads={obs.read_count()} duplicates={len(dup_values)} same_generation_duplicates={len(same_gen_dups)}")
    assert not missing, f"{len(missing)} acked records never consumed, e.g. {sorted(missing)[:5]}"
    assert not unknown, f"consumed values nobody produced: {sorted(unknown)[:5]}"
    assert not same_gen_dups, f"records read twice within one generation: {list(same_gen_dups.items())[:5]}"
    # Each consumed record sits at the partition and offset its delivery report named.
    wrong_place = [(v, log.acked[v], r[0][2:]) for v, r in obs.reads.items()
                   if v in log.acked and any((p, o) != log.acked[v] for _, _, p, o in r)]
    assert not wrong_place, f"records read at another position than acked: {wrong_place[:5]}"
