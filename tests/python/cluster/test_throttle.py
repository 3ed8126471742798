"""The catch-up throttle: replicas a move adds fetch from their leader at no more than
`reassignment_throttle_bytes_per_s` per follower broker. A topic of 4 partitions holding ~200 MiB is
written on three nodes; a fourth node is added and the rebalancer moves replicas onto it. The bytes
that reach node 4 divided by the time the moves took must be near the limit (a generous band: the
machine is shared), and the p99 latency of an acks=all producer during the catch-up stays within 3×
of its p99 before it."""

import statistics
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from chronik_cluster import cli_json, started_cluster
from sampling import Sampler

TOPIC = "bulk"
PROBE_TOPIC = "probe"
PARTITIONS = 4
VALUE_BYTES = 64 * 1024
PRELOAD_BYTES = 200 * 1024 * 1024
THROTTLE_BYTES_PER_S = 16 * 1024 * 1024
RATE_BAND = (0.5, 1.5)
P99_GROWTH_MAX = 3.0
# Below this a p99 is scheduler noise on a shared 2-core machine, not a measurement of the broker.
P99_FLOOR_S = 0.010
PROBE_INTERVAL_S = 0.02
BASELINE_S = 10.0
MOVES_DONE_WITHIN_S = 240.0


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=3)])[name].result(timeout=30)


def preload(bootstrap):
    """PRELOAD_BYTES of incompressible values spread evenly over the partitions, acks=all."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20, "compression.type": "none",
                  "batch.size": 1_000_000, "queue.buffering.max.kbytes": 262_144})
    value = bytes(range(256)) * (VALUE_BYTES // 256)
    count = PRELOAD_BYTES // VALUE_BYTES
    errors = []
    for i in range(count):
        while True:
            try:
                p.produce(TOPIC, value, partition=i % PARTITIONS,
                          on_delivery=lambda err, _msg: err and errors.append(err))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(120) == 0 and not errors, errors[:3]
    return count * VALUE_BYTES // PARTITIONS


class LatencyProbe(Sampler):
    """One acks=all record at a time to PROBE_TOPIC; keeps (send time, latency) of each."""

    interval_s = PROBE_INTERVAL_S

    def __init__(self, bootstrap):
        super().__init__()
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
        self.samples = []
        self.errors = []

    def sample(self):
        t0 = time.monotonic()
        done = []
        self.producer.produce(PROBE_TOPIC, b"x" * 1024, on_delivery=lambda err, _m: done.append(err))
        while not done and not self.stop_event.is_set():
            self.producer.poll(0.001)
        if done and done[0] is not None:
            self.errors.append(done[0])
        elif done:
            self.samples.append((t0, time.monotonic() - t0))

    def p99(self, start, end):
        window = sorted(lat for t, lat in self.samples if start <= t <= end)
        assert len(window) >= 50, f"only {len(window)} latency samples in the window"
        return statistics.quantiles(window, n=100)[98], len(window)


def onto(status, node):
    """(partitions of TOPIC moving onto `node`, partitions of TOPIC whose replicas include it)."""
    moving = {p["partition"] for p in status["partitions"]
              if p["topic"] == TOPIC and node in (p.get("adding_replicas") or [])}
    placed = {p["partition"] for p in status["partitions"]
              if p["topic"] == TOPIC and node in p["replicas"] and node not in (p.get("adding_replicas") or [])}
    return moving, placed


def test_catch_up_runs_at_the_throttle_and_producers_keep_their_latency(tmp_path):
    with started_cluster(tmp_path / "cluster", reassignment_throttle_bytes_per_s=THROTTLE_BYTES_PER_S) as cluster:
        create_topic(cluster.bootstrap, TOPIC, PARTITIONS)
        create_topic(cluster.bootstrap, PROBE_TOPIC, 1)
        cluster.wait_full_isr(TOPIC)
        t = time.monotonic()
        partition_bytes = preload(cluster.bootstrap)
        print(f"[throttle] preloaded {PARTITIONS} x {partition_bytes / 2**20:.0f} MiB in {time.monotonic() - t:.1f}s")
        cluster.wait_full_isr(TOPIC)
        leader, _ = cluster.wait_agreed_leader()
        with LatencyProbe(cluster.bootstrap) as probe:
            baseline_start = time.monotonic()
            time.sleep(BASELINE_S)  # the probe measures the quiet cluster meanwhile
            baseline_end = time.monotonic()
            node4 = cluster.new_node(4)
            node4.spawn()
            cli_json("add-node", *cluster.add_args(4), "--config", cluster.nodes[leader].config_path)
            node4.wait_status("ok")
            started = finished = None
            deadline = time.monotonic() + MOVES_DONE_WITHIN_S
            progress_seen = None
            while time.monotonic() < deadline:
                status = cluster.leader_status()
                moving, placed = onto(status, 4)
                now = time.monotonic()
                if moving and started is None:
                    started = now
                if moving and progress_seen is None:
                    # `cluster status` asks each moving partition's leader for its catch-up progress.
                    for m in cli_json("status", "--config", cluster.nodes[leader].config_path)["reassignments"]:
                        done = [p for p in m.get("progress") or [] if p["bytes_done"] > 0 and p["bytes_per_s"]]
                        if m["topic"] == TOPIC and done:
                            progress_seen = done[0]
                if started is not None and not status.get("reassignments"):
                    plan = cli_json("rebalance", "--dry-run", "--config", cluster.nodes[leader].config_path)
                    if not plan["moves"]:
                        finished = now
                        break
                time.sleep(0.1)
            assert started is not None and finished is not None, "the moves onto node 4 did not finish in time"
            moved = len(placed)
            p99_before, n_before = probe.p99(baseline_start, baseline_end)
            p99_during, n_during = probe.p99(started, finished)
        took = finished - started
        rate = moved * partition_bytes / took
        print(f"[throttle] {moved} partition(s) x {partition_bytes / 2**20:.0f} MiB onto node 4 in {took:.1f}s: "
              f"{rate / 2**20:.1f} MiB/s with a limit of {THROTTLE_BYTES_PER_S / 2**20:.0f} MiB/s; "
              f"probe p99 {p99_before * 1000:.1f} ms before ({n_before} samples), "
              f"{p99_during * 1000:.1f} ms during ({n_during}); progress seen {progress_seen}")
        assert not probe.errors, probe.errors[:3]
        assert progress_seen is not None, "cluster status never showed a catch-up's progress"
        assert 0 < progress_seen["bytes_done"] <= progress_seen["bytes_total"] and progress_seen["eta_s"] is not None, progress_seen
        low, high = RATE_BAND
        assert low * THROTTLE_BYTES_PER_S <= rate <= high * THROTTLE_BYTES_PER_S, \
            f"catch-up at {rate / 2**20:.1f} MiB/s, limit {THROTTLE_BYTES_PER_S / 2**20:.0f} MiB/s"
        assert p99_during <= P99_GROWTH_MAX * max(p99_before, P99_FLOOR_S), \
            f"probe p99 {p99_during * 1000:.1f} ms during the catch-up, {p99_before * 1000:.1f} ms before"
