"""Restart time after kill -9 with a big log: with the recovery point, and without it (the full scan
every start did before recovery points existed), page cache warm and cold.

For each size (1 GiB, and 5 and 20 GiB in a full run; `--restart-gib` picks sizes), on a fresh single node (`fsync = "always"`, default
1 GiB segments):
1. a topic of PARTITIONS partitions takes `size` bytes of random 4 KiB values (acks=all,
   librdkafka's default batching: batches of about 1 MB); the driver waits past the recovery point
   interval;
2. TAIL_BYTES more (acks=all), kill -9 right after the last acknowledgement, restart and time it
   (below) with the recovery points the broker wrote ("recovery point": what came after the last one
   is scanned, as after a crash under load);
3. TAIL_BYTES more, kill -9, delete every partition's `recovery-point` file, restart and time it
   ("full scan": every segment CRC-checked, what every start did before recovery points);
4. steps 2–3 once more after evicting the data files from the page cache (`sync`, then
   `posix_fadvise(DONTNEED)` on every file of the data dir: only this broker's files), as after a
   reboot or with a log larger than memory ("cold").

Restart time: from spawning the process until the Kafka port answers ListOffsets on every partition
of the topic with the end offsets it had before the kill (`get_watermark_offsets`), polled every
POLL_S. The same is measured for an empty node (the floor: process start, metadata Raft log, listeners).
The broker's own log line "opened partition log" gives the bytes each partition scanned.
"""

import os
import re
import shutil
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from loadgen import LoadError, wait_writable
from targets import REPO_ROOT  # noqa: F401  (puts tests/python on sys.path)

from chronik_broker import Broker  # noqa: E402

GIB = 2**30
TOPIC = "restart"
PARTITIONS = 4
VALUE_BYTES = 4096
DISTINCT_VALUES = 64
SIZES_BYTES = {"full": (1 * GIB, 5 * GIB, 20 * GIB), "quick": (1 * GIB,)}
# Appended after the recovery point: waits past the broker's recovery point interval (1 s) first.
TAIL_BYTES = 64 * 2**20
RECOVERY_POINT_WAIT_S = 2.0
TARGET_S = 2.0
FLUSH_TIMEOUT_S = 600.0
TOPIC_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 600.0
POLL_S = 0.05
WATERMARK_TIMEOUT_S = 1.0
# The largest size needs it twice over (data, and room for the rest of the benchmark).
DISK_FREE_FACTOR = 2


def produce(bootstrap, total_bytes):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "compression.type": "none",
                  "queue.buffering.max.kbytes": 262_144, "log_level": 4})
    values = [os.urandom(VALUE_BYTES) for _ in range(DISTINCT_VALUES)]
    errors = []
    for i in range(total_bytes // VALUE_BYTES):
        while True:
            try:
                p.produce(TOPIC, values[i % DISTINCT_VALUES], partition=i % PARTITIONS,
                          on_delivery=lambda err, _msg: err and errors.append(err))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(FLUSH_TIMEOUT_S)
    if left or errors:
        raise LoadError(f"produce to {TOPIC}: {left} unacknowledged, errors {errors[:3]}")


def end_offsets(bootstrap):
    """[end offset per partition] of TOPIC."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-restart", "log_level": 4})
    try:
        return [c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=TOPIC_TIMEOUT_S)[1]
                for p in range(PARTITIONS)]
    finally:
        c.close()


def timed_start(broker, expected):
    """Spawn the broker and return the seconds until every partition answers ListOffsets with the
    `expected` end offsets (with `expected` None: until the harness's readiness check passes). One
    client, created before the spawn, reconnecting every 20–100 ms: its first request waits in the
    listen queue and is answered as soon as the broker serves."""
    c = None
    if expected is not None:
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bench-restart", "log_level": 0,
                      "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 100})
    try:
        t0 = time.monotonic()
        broker.spawn()
        deadline = t0 + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not broker.is_running():
                raise LoadError("broker exited during restart\n" + broker.log_tail())
            if c is None:
                if broker_ready(broker):
                    return time.monotonic() - t0
                time.sleep(POLL_S)
                continue
            try:
                ends = [c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=WATERMARK_TIMEOUT_S)[1]
                        for p in range(PARTITIONS)]
            except Exception:  # not serving yet (timed out), or the partition not open yet
                time.sleep(POLL_S)
                continue
            if ends == expected:
                return time.monotonic() - t0
            raise LoadError(f"end offsets after restart {ends}, before the kill {expected}")
        raise LoadError(f"not serving within {READY_TIMEOUT_S:.0f}s\n" + broker.log_tail())
    finally:
        if c is not None:
            c.close()


def broker_ready(broker):
    ok, _ = broker._serving()  # noqa: SLF001 (the harness's own readiness check)
    return ok


def evict_page_cache(data_dir):
    """Write back and drop this broker's files from the page cache (nothing else is touched)."""
    os.sync()
    for root, _, files in os.walk(data_dir):
        for name in files:
            try:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def recovery_points(data_dir):
    return list(Path(data_dir).rglob("recovery-point"))


def scanned_bytes(broker, start_no):
    """Bytes the partitions of TOPIC scanned in the broker's start number `start_no` (its log)."""
    text = broker.log_path.read_text(errors="replace")
    part = text.split(f"==== start #{start_no} ====")[-1]
    return sum(int(m) for m in re.findall(rf"{TOPIC}-\d+.*?scanned_bytes=(\d+)", part))


def crash_restart(broker, with_recovery_point, cold, log):
    """Append a tail (acks=all) as a load would, kill -9, restart; returns the figures."""
    produce(broker.bootstrap, TAIL_BYTES)
    expected = end_offsets(broker.bootstrap)
    broker.kill9()
    removed = 0
    if not with_recovery_point:
        for p in recovery_points(broker.data_dir):
            p.unlink()
            removed += 1
    if cold:
        evict_page_cache(broker.data_dir)
    secs = timed_start(broker, expected)
    scanned = scanned_bytes(broker, broker.starts)
    how = f"{'recovery point' if with_recovery_point else f'full scan ({removed} recovery points removed)'}, " \
          f"{'cold' if cold else 'warm'} page cache"
    log(f"restart: {how}: {secs:.2f}s, {scanned / 1e6:,.0f} MB scanned")
    return {"with_recovery_point": with_recovery_point, "cold": cold, "seconds": secs, "scanned_bytes": scanned}


def run_size(workdir, size, log):
    broker = Broker(workdir, num_partitions=PARTITIONS)
    out = {"bytes": size, "restarts": []}
    try:
        broker.start()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 4})
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(timeout=TOPIC_TIMEOUT_S)
        wait_writable(broker.bootstrap, TOPIC, PARTITIONS, TOPIC_TIMEOUT_S)
        t = time.monotonic()
        produce(broker.bootstrap, size)
        took = time.monotonic() - t
        log(f"restart: {size / GIB:.0f} GiB in {PARTITIONS} partitions ({size / took / 1e6:.0f} MB/s)")
        time.sleep(RECOVERY_POINT_WAIT_S)
        for cold in (False, True):
            for with_rp in (True, False):
                out["restarts"].append(crash_restart(broker, with_rp, cold, log))
    finally:
        broker.stop()
    return out


def run_empty(workdir, log):
    """The floor: restart time of a node holding no partition data."""
    broker = Broker(workdir)
    try:
        broker.start()
        broker.kill9()
        secs = timed_start(broker, None)
        log(f"restart: empty node: {secs:.2f}s")
        return secs
    finally:
        broker.stop()


def run(workdir, quick, log, keep=False, sizes=None):
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = sizes or SIZES_BYTES["quick" if quick else "full"]
    free = shutil.disk_usage(workdir).free
    if free < DISK_FREE_FACTOR * max(sizes):
        raise LoadError(f"only {free / GIB:.1f} GiB free under {workdir}; the restart rows need "
                        f"{DISK_FREE_FACTOR * max(sizes) / GIB:.0f} GiB")
    out = {"partitions": PARTITIONS, "tail_bytes": TAIL_BYTES, "target_s": TARGET_S, "sizes": []}
    out["empty_s"] = run_empty(workdir / "empty", log)
    shutil.rmtree(workdir / "empty", ignore_errors=True)
    for size in sizes:
        d = workdir / f"size-{size // GIB}g"
        try:
            out["sizes"].append(run_size(d, size, log))
        except Exception as e:  # one failed size must not lose the others' figures
            log(f"restart {size / GIB:.0f} GiB failed: {e}")
            out["sizes"].append({"bytes": size, "error": str(e).splitlines()[0][:300]})
        finally:
            if not keep:
                shutil.rmtree(d, ignore_errors=True)
    return out


def render(restart):
    """The restart table (Markdown lines)."""
    out = [f"Restart after kill -9: a single node, {restart['partitions']} partitions holding the size named, "
           f"{restart['tail_bytes'] / 2**20:.0f} MiB more (acks=all) just before each kill; time from "
           f"spawning the process until every partition answers ListOffsets with its pre-crash end. "
           f"Empty node: {restart['empty_s']:.2f} s. One run each; target ≤ {restart['target_s']:.0f} s.", "",
           "| row | page cache | recovery point | full scan (before) | scanned with / without | target |",
           "|---|---|---|---|---|---|"]
    for s in restart["sizes"]:
        name = f"restart after kill -9 ({s['bytes'] / GIB:.0f} GiB)"
        if "error" in s:
            out.append(f"| {name} | n/a — {s['error']} | | | | |")
            continue
        for cold in (False, True):
            runs = {r["with_recovery_point"]: r for r in s["restarts"] if r["cold"] == cold}
            rp, full = runs.get(True), runs.get(False)
            met = "met" if rp and rp["seconds"] <= restart["target_s"] else "missed"
            out.append(f"| {name} | {'cold' if cold else 'warm'} | {rp['seconds']:.2f} s | {full['seconds']:.2f} s "
                       f"| {rp['scanned_bytes'] / 1e6:,.0f} / {full['scanned_bytes'] / 1e6:,.0f} MB "
                       f"| ≤ {restart['target_s']:.0f} s: {met} |")
    return out
