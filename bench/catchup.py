"""Catch-up of new replicas: how fast a fourth node takes in the replicas the rebalancer moves onto it,
against the disk's sequential write+fsync ceiling, without and with client load, and once throttled.

Each scenario runs on a fresh three-node cluster (the cluster tests' `Cluster`, RF 3, min ISR 2) whose
`reassignment_throttle_bytes_per_s` is set for it (0: no limit, the machine's own speed):

1. a topic of 4 partitions, RF 3, takes `preload` bytes of random 64 KiB values (acks=all); the driver
   then waits for every replica to be in the ISR and for the disk to go quiet;
2. with client load: one producer process (workers.py `rate`) writes 1 KiB records, acks=all, at a fixed
   rate to another topic, first for LOAD_BEFORE_S before anything moves (its "before" latency);
3. node 4 starts and `chronik-server cluster add-node` adds it; about 5 s after it registers, the
   rebalancer plans and moves replicas onto it, two at a time (4 partitions × RF 3 on 4 nodes: 3 moves);
4. from the first move onto node 4 (`adding_replicas` in the leader's /admin/status) until no move is in
   progress and the planner has nothing left (POST /admin/rebalance?dry_run=true, what
   `cluster rebalance --dry-run` asks), the driver samples node 4's `write_bytes` (/proc/<pid>/io).

Figures: the bytes node 4 wrote in that window over its length (the catch-up rate, the controller's
steps between moves included), and over the part of it in which node 4 wrote at least BUSY_MB_S_MIN
(the rate while copying); both as a fraction of the disk ceiling. With load, the producer's p50/p99
before and during the window. All nodes share one disk here, so the leaders' reads, node 4's writes and
fsyncs and the producer's writes on three nodes compete with each other. Nothing is asserted.
"""

import json
import os
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

import diskquiet
import procstat
from loadgen import LoadError, run_group, wait_writable
from stats import Repeated, percentile
from targets import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "python" / "cluster"))

from chronik_cluster import Cluster, cli_json  # noqa: E402

MIB = 2**20
BULK_TOPIC = "catchup-bulk"
LOAD_TOPIC = "catchup-load"
PARTITIONS = 4
REPLICATION = 3
NEW_NODE = 4
VALUE_BYTES = 64 * 1024
# Random values, cycled: incompressible, and no cost per record in the driver.
DISTINCT_VALUES = 16
# Quick runs still move ~400 MB: with less, the controller's steps between moves (about a second)
# outweigh the copying.
PRELOAD_BYTES = {"full": 1024 * MIB, "quick": 512 * MIB}
# The client load during the second scenario: a fixed, moderate rate (a tenth of what three nodes
# take from the Python producers at full speed on this machine), 1 KiB records, acks=all.
LOAD_RATE_REC_S = 20_000
LOAD_RECORD_BYTES = 1024
LOAD_PARTITIONS = 4
LOAD_BEFORE_S = {"full": 10.0, "quick": 5.0}
# Latency samples of the producer's first second are its connection warm-up, not the broker.
LOAD_WARMUP_S = 1.0
# Upper bound of the load run; it stops as soon as the driver creates its stop file.
LOAD_RUN_MAX_S = 900.0
# The throttled scenario's limit: the default of `reassignment_throttle_bytes_per_s`.
THROTTLE_BYTES_PER_S = 50 * MIB
SCENARIOS = (
    {"name": "unthrottled, no client load", "throttle": 0, "load": False},
    {"name": f"unthrottled, producer at {LOAD_RATE_REC_S * LOAD_RECORD_BYTES / 1e6:.0f} MB/s", "throttle": 0,
     "load": True},
    {"name": f"throttled to {THROTTLE_BYTES_PER_S // MIB} MiB/s, no client load", "throttle": THROTTLE_BYTES_PER_S,
     "load": False},
)
MOVES_DONE_WITHIN_S = 600.0
POLL_S = 0.1
# Node 4 writing at least this (MB/s, between two samples) counts as copying; below it is the metadata
# log and heartbeats while the controller completes one move and starts the next.
BUSY_MB_S_MIN = 5.0
ADMIN_TIMEOUT_S = 3.0
TOPIC_TIMEOUT_S = 30.0
PRELOAD_FLUSH_S = 300.0
# A scenario holds the preload three times plus node 4's copies and the load topic.
DISK_FREE_MIN_BYTES = 8 * 2**30


# ---- one scenario -------------------------------------------------------------

def create_topic(cluster, name, partitions):
    """Create the topic, wait until every replica is in the ISR, then until one acks=all record per
    partition is acknowledged: the first requests to a new topic wait while its leaders and followers
    take up their roles, which is not what the load's "before" latency should measure."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 4})
    admin.create_topics([NewTopic(name, partitions, REPLICATION)])[name].result(timeout=TOPIC_TIMEOUT_S)
    cluster.wait_full_isr(name)
    wait_writable(cluster.bootstrap, name, partitions, TOPIC_TIMEOUT_S)


def preload(bootstrap, total_bytes):
    """`total_bytes` of random values spread evenly over the bulk topic's partitions, acks=all.
    Returns the value bytes per partition."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20, "compression.type": "none",
                  "batch.size": 1_000_000, "queue.buffering.max.kbytes": 262_144, "log_level": 4})
    values = [os.urandom(VALUE_BYTES) for _ in range(DISTINCT_VALUES)]
    count = total_bytes // VALUE_BYTES
    errors = []
    for i in range(count):
        while True:
            try:
                p.produce(BULK_TOPIC, values[i % DISTINCT_VALUES], partition=i % PARTITIONS,
                          on_delivery=lambda err, _msg: err and errors.append(err))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(PRELOAD_FLUSH_S)
    if left or errors:
        raise LoadError(f"preload of {BULK_TOPIC}: {left} unacknowledged, errors {errors[:3]}")
    return count * VALUE_BYTES // PARTITIONS


class LoadRun:
    """The client load: one workers.py `rate` producer in its own process, from start() until stop()."""

    def __init__(self, bootstrap, workdir, log_dir):
        self.stop_file = Path(workdir) / "load.stop"
        self.spec = ["rate", "--bootstrap", bootstrap, "--topic", LOAD_TOPIC, "--size", str(LOAD_RECORD_BYTES),
                     "--acks", "all", "--duration", str(LOAD_RUN_MAX_S), "--rate", str(LOAD_RATE_REC_S),
                     "--until-file", str(self.stop_file), "--send-times"]
        self.log_dir = log_dir
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.started = threading.Event()
        self.start_at = None
        self.future = None

    def _on_started(self, start_at):
        self.start_at = start_at
        self.started.set()

    def start(self):
        """Start the producer; returns its start time (wall clock) once it produces."""
        self.future = self.pool.submit(run_group, [self.spec], LOAD_RUN_MAX_S, self.log_dir, self._on_started)
        while not self.started.wait(0.5):
            if self.future.done():
                self.future.result()  # raises the worker's failure
                raise LoadError("load producer ended before it started")
        return self.start_at

    def stop(self):
        """Stop the producer and return its result (None if it never ran)."""
        if self.future is None:
            return None
        self.stop_file.touch()
        try:
            return self.future.result()[0]
        finally:
            self.pool.shutdown()
            self.future = None


def latency_window(load, t0, t1):
    """p50/p99 (ms) and rate of the load's records sent between t0 and t1 (wall clock)."""
    lat = sorted(ms for at, ms in zip(load["sent_at"], load["latencies_ms"]) if t0 <= at <= t1)
    return {"samples": len(lat), "rec_s": len(lat) / (t1 - t0) if t1 > t0 else None,
            "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "p999_ms": percentile(lat, 99.9)}


def dry_run_moves(cluster):
    """The planner's moves now (the metadata leader's POST /admin/rebalance?dry_run=true), or None when
    the leader did not answer."""
    try:
        leader, _ = cluster.wait_agreed_leader(timeout_s=ADMIN_TIMEOUT_S)
        req = urllib.request.Request(f"http://{cluster.nodes[leader].admin_addr}/admin/rebalance?dry_run=true",
                                     data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=ADMIN_TIMEOUT_S) as r:
            return json.loads(r.read())["moves"]
    except (OSError, ValueError, KeyError, AssertionError, urllib.error.HTTPError):
        return None


def watch_moves(cluster, log):
    """Sample node 4's write_bytes and the brokers' CPU until the rebalancer is done. Returns the
    samples [(wall time, write_bytes, brokers' CPU s, node 4's CPU s)], the indexes of the first
    sample with a move onto node 4 and of the last, and the partitions that moved onto it."""
    pid4 = cluster.nodes[NEW_NODE].proc.pid
    pids = [n.proc.pid for n in cluster.nodes.values() if n.is_running()]
    samples, first, moved = [], None, set()
    deadline = time.monotonic() + MOVES_DONE_WITHIN_S
    while time.monotonic() < deadline:
        samples.append((time.time(), procstat.write_bytes(pid4), sum(procstat.cpu_seconds(p) for p in pids),
                        procstat.cpu_seconds(pid4)))
        try:
            status = cluster.leader_status()
        except (OSError, ValueError, AssertionError):
            time.sleep(POLL_S)
            continue
        adding = {(p["topic"], p["partition"]) for p in status["partitions"]
                  if NEW_NODE in (p.get("adding_replicas") or [])}
        if adding - moved:
            log(f"catch-up: moving onto node {NEW_NODE}: {sorted(adding)}")
        moved |= adding
        if adding and first is None:
            first = len(samples) - 1
        if first is not None and not status.get("reassignments") and dry_run_moves(cluster) == []:
            return samples, first, len(samples) - 1, moved
        time.sleep(POLL_S)
    raise LoadError(f"the moves onto node {NEW_NODE} did not finish within {MOVES_DONE_WITHIN_S:.0f}s "
                    f"(first move seen: {first is not None})")


def copying(samples, first, last):
    """(bytes, seconds) over the sample intervals in [first-1, last] where node 4 wrote at least
    BUSY_MB_S_MIN."""
    busy_bytes = busy_s = 0.0
    window = samples[max(0, first - 1):last + 1]
    for (t0, b0, *_), (t1, b1, *_) in zip(window, window[1:]):
        if t1 > t0 and (b1 - b0) / (t1 - t0) >= BUSY_MB_S_MIN * 1e6:
            busy_bytes += b1 - b0
            busy_s += t1 - t0
    return busy_bytes, busy_s


def run_scenario(workdir, scenario, size, log_dir, log):
    cluster = Cluster(workdir, reassignment_throttle_bytes_per_s=scenario["throttle"])
    load = None
    out = {"name": scenario["name"], "throttle_bytes_per_s": scenario["throttle"], "load": scenario["load"]}
    try:
        cluster.start()
        create_topic(cluster, BULK_TOPIC, PARTITIONS)
        t = time.monotonic()
        out["partition_bytes"] = preload(cluster.bootstrap, PRELOAD_BYTES[size])
        took = time.monotonic() - t
        log(f"catch-up [{scenario['name']}]: preloaded {PARTITIONS} × {out['partition_bytes'] / MIB:.0f} MiB "
            f"in {took:.1f}s ({PRELOAD_BYTES[size] / took / 1e6:.0f} MB/s)")
        cluster.wait_full_isr(BULK_TOPIC)
        out["disk_quiet_wait_s"] = diskquiet.wait_quiet(workdir, log)
        if scenario["load"]:
            create_topic(cluster, LOAD_TOPIC, LOAD_PARTITIONS)
            load = LoadRun(cluster.bootstrap, workdir, log_dir)
            load_start = load.start()
            time.sleep(max(0.0, load_start + LOAD_BEFORE_S[size] - time.time()))
        t_add = time.time()
        leader, _ = cluster.wait_agreed_leader()
        node4 = cluster.new_node(NEW_NODE)
        node4.spawn()
        cli_json("add-node", *cluster.add_args(NEW_NODE), "--config", cluster.nodes[leader].config_path)
        node4.wait_status("ok")
        samples, first, last, moved = watch_moves(cluster, log)
        if load is not None:
            result = load.stop()
            out["load_before"] = latency_window(result, load_start + LOAD_WARMUP_S, t_add)
            out["load_during"] = latency_window(result, samples[max(0, first - 1)][0], samples[last][0])
            out["load_errors"] = result["errors"]
        final = cluster.leader_status()["partitions"]
    except Exception as e:  # one failed scenario must not lose the others' figures
        log(f"catch-up [{scenario['name']}] failed: {e}")
        print(cluster.log_tails(), file=sys.stderr)
        out["error"] = str(e).splitlines()[0][:300]
        return out
    finally:
        if load is not None:
            load.stop()
        cluster.stop()
    t_first, t_last = samples[first][0], samples[last][0]
    base = samples[max(0, first - 1)]
    if base[1] is None:
        out["error"] = "no /proc/<pid>/io on this kernel: node 4's bytes cannot be read"
        return out
    busy_bytes, busy_s = copying(samples, first, last)
    out.update({
        # The move began after the sample before the first one that shows it: the window starts there,
        # so its bytes and its time both count whatever node 4 copied before the move was seen.
        "add_to_first_move_s": t_first - t_add, "catch_up_s": t_last - base[0],
        "bytes_onto_node4": samples[last][1] - base[1], "copying_bytes": busy_bytes, "copying_s": busy_s,
        "broker_cores": (samples[last][2] - base[2]) / (t_last - base[0]),
        "node4_cores": (samples[last][3] - base[3]) / (t_last - base[0]),
        "moved": sorted(moved),
        "on_node4": sorted((p["topic"], p["partition"]) for p in final if NEW_NODE in p["replicas"]),
        "timeline": [(round(s[0] - base[0], 2), s[1] - base[1]) for s in samples[max(0, first - 1):last + 1]],
    })
    out["mb_s"] = out["bytes_onto_node4"] / out["catch_up_s"] / 1e6 if out["catch_up_s"] > 0 else None
    out["copying_mb_s"] = busy_bytes / busy_s / 1e6 if busy_s else None
    log(f"catch-up [{scenario['name']}]: {out['bytes_onto_node4'] / 1e6:,.0f} MB onto node {NEW_NODE} in "
        f"{out['catch_up_s']:.1f}s from the first move ({out['add_to_first_move_s']:.1f}s after the add): "
        f"{out['mb_s'] or 0:.0f} MB/s; {out['copying_mb_s'] or 0:.0f} MB/s while copying ({busy_s:.1f}s); "
        f"brokers {out['broker_cores']:.2f} cores (node {NEW_NODE} {out['node4_cores']:.2f}); "
        f"moved {out['moved']}" + (f"; producer before {out['load_before']}, during {out['load_during']}"
                                   if load is not None else ""))
    return out


def run(workdir, quick, log_dir, log):
    """Every scenario on its own cluster under `workdir`; each cluster's data is removed after it."""
    size = "quick" if quick else "full"
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(workdir).free
    if free < DISK_FREE_MIN_BYTES:
        raise LoadError(f"only {free / 2**30:.1f} GiB free under {workdir}; the catch-up rows need "
                        f"{DISK_FREE_MIN_BYTES / 2**30:.0f} GiB")
    out = {"preload_bytes": PRELOAD_BYTES[size], "partitions": PARTITIONS, "load_rate_rec_s": LOAD_RATE_REC_S,
           "load_record_bytes": LOAD_RECORD_BYTES, "busy_mb_s_min": BUSY_MB_S_MIN, "scenarios": []}
    for i, scenario in enumerate(SCENARIOS):
        d = workdir / f"scenario-{i + 1}"
        try:
            out["scenarios"].append(run_scenario(d, scenario, size, log_dir, log))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return out


# ---- report -------------------------------------------------------------------

def _pct(mb_s, ceiling):
    return f"{100.0 * mb_s / ceiling:.0f}%" if mb_s and ceiling else "—"


def _lat(w):
    return f"{w['p50_ms']:.1f} / {w['p99_ms']:.1f} ms" if w and w.get("p99_ms") is not None else "—"


def render(catch_up, ceilings):
    """The catch-up table (Markdown lines)."""
    seq = Repeated(ceilings["seqwrite_mb_s"]).median
    out = [f"Catch-up onto a fourth node: {catch_up['partitions']} partitions × RF {REPLICATION} holding "
           f"{catch_up['preload_bytes'] / MIB:,.0f} MiB in all (64 KiB random values), a fresh three-node cluster "
           f"per row, one run each; \"vs ceiling\" is against sequential write with an fsync every MiB "
           f"({seq:,.0f} MB/s); all nodes on one disk.", "",
           "| scenario | bytes onto node 4 | first move → balanced | catch-up rate | vs ceiling "
           "| while copying | notes |",
           "|---|---|---|---|---|---|---|"]
    for s in catch_up["scenarios"]:
        if "error" in s:
            out.append(f"| {s['name']} | n/a — {s['error']} | | | | | |")
            continue
        moved = {}
        for topic, _ in s["on_node4"]:
            moved[topic] = moved.get(topic, 0) + 1
        notes = [f"{s['add_to_first_move_s']:.1f} s from add-node to the first move; replicas now on node 4: "
                 + ", ".join(f"{n} of {t}" for t, n in moved.items()),
                 f"CPU cores: brokers {s['broker_cores']:.2f} (node 4 {s['node4_cores']:.2f})"]
        if s["throttle_bytes_per_s"]:
            t = s["throttle_bytes_per_s"]
            notes.insert(0, f"limit {t / MIB:.0f} MiB/s = {t / 1e6:.1f} MB/s")
        if s["load"]:
            notes.append(f"producer ({catch_up['load_rate_rec_s']:,} rec/s × {catch_up['load_record_bytes']} B, "
                         f"acks=all) p50 / p99: {_lat(s['load_before'])} before, {_lat(s['load_during'])} during "
                         f"({s['load_during']['rec_s'] or 0:,.0f} rec/s achieved during)")
        copying = (f"{s['copying_mb_s']:,.0f} MB/s ({_pct(s['copying_mb_s'], seq)}) over {s['copying_s']:.1f} s"
                   if s["copying_mb_s"] else "—")
        out.append(f"| {s['name']} | {s['bytes_onto_node4'] / 1e6:,.0f} MB | {s['catch_up_s']:.1f} s "
                   f"| {s['mb_s']:,.0f} MB/s | {_pct(s['mb_s'], seq)} | {copying} | {'; '.join(notes)} |")
    return out
