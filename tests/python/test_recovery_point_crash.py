"""kill -9 after recovery points were written: the restart trusts them and loses nothing acknowledged.

Small segments (1 MiB, the least `segment_bytes` allows) make the partitions roll under a plain
acks=all load, so each partition has sealed segments below its recovery point (the `recovery-point`
file, written at rolls and after group-commit fsyncs) and a tail after it. The broker is killed with
SIGKILL once every partition has both, and restarted on the same data dir. Its log must show that
the restart used the recovery points (sealed segments trusted, not scanned), and every acknowledged
record must be present once, at the offset its delivery report named, in production order — the same
checks as test_crash.py.
"""

import re
import struct

import pytest

from chronik_broker import Broker
from crash_load import ProducerLoad, check_acked_records, read_whole_topic
from kafka_helpers import create_topic, wait_for

TOPIC = "recovery-point-crash"
PARTITIONS = 2
SEGMENT_BYTES = 1 << 20
# Each partition has at least this many sealed segments below its recovery point before the kill.
SEALED_BELOW_POINT_MIN = 2
ACKED_AFTER_RESTART = 5_000
SETUP_TIMEOUT_S = 180.0

PLAIN_PRODUCER = {
    "acks": "all",
    "enable.idempotence": False,
    "retries": 0,
    "message.timeout.ms": 30_000,
    "linger.ms": 0,
}


def recovery_point(partition_dir):
    """(offset, segment base) of a partition's recovery point file, or None."""
    try:
        raw = (partition_dir / "recovery-point").read_bytes()
    except OSError:
        return None
    if len(raw) < 24 or raw[:4] != b"CRPT":
        return None
    offset, segment = struct.unpack_from("<qq", raw, 8)
    return offset, segment


def sealed_below_point(partition_dir):
    """Segments (by base offset) wholly below the partition's recovery point."""
    point = recovery_point(partition_dir)
    if point is None:
        return []
    bases = sorted(int(p.stem) for p in partition_dir.glob("*.log"))
    return [b for b in bases if b < point[1]]


@pytest.mark.timeout(600)
def test_kill9_after_recovery_points_loses_nothing_acked(tmp_path):
    broker = Broker(tmp_path / "broker", extra_config=f"segment_bytes = {SEGMENT_BYTES}")
    broker.start()
    try:
        create_topic(broker.bootstrap, TOPIC, partitions=PARTITIONS)
        dirs = [broker.data_dir / "logs" / f"{TOPIC}-{p}" for p in range(PARTITIONS)]
        load = ProducerLoad(broker.bootstrap, TOPIC, PARTITIONS, PLAIN_PRODUCER).start()
        try:
            wait_for(lambda: all(len(sealed_below_point(d)) >= SEALED_BELOW_POINT_MIN for d in dirs)
                     or load.fatal, SETUP_TIMEOUT_S,
                     f"{SEALED_BELOW_POINT_MIN} sealed segments below the recovery point of every partition",
                     interval_s=0.1)
            assert not load.fatal, f"fatal producer errors: {load.fatal}"
            # Some more acknowledged records after the recovery point, then the crash mid-load.
            load.wait_more_acked(2_000, "after the recovery points")
            points = {d.name: recovery_point(d) for d in dirs}
            acked_at_kill = load.log.acked_count()
            broker.restart_after_crash()
            print(f"[recovery-point] killed with {acked_at_kill} acked, recovery points {points}; "
                  f"restarted (start #{broker.starts})")
            load.wait_more_acked(ACKED_AFTER_RESTART, "after restart")
        finally:
            load.stop()
        assert not load.fatal, f"fatal producer errors: {load.fatal}"

        start = broker.log_path.read_text(errors="replace").split(f"==== start #{broker.starts} ====")[-1]
        opened = {m.group(1): m.group(2) for m in
                  re.finditer(rf"opened partition log dir=\S*/({re.escape(TOPIC)}-\d+) (.*)", start)}
        print(f"[recovery-point] opens after the crash: {opened}")
        assert set(opened) == {d.name for d in dirs}, opened
        for name, fields in opened.items():
            assert "recovery_point=Some(" in fields, f"{name} did not use its recovery point: {fields}"
            trusted = int(re.search(r"trusted_segments=(\d+)", fields).group(1))
            assert trusted >= SEALED_BELOW_POINT_MIN, f"{name}: {fields}"

        logs, hws = read_whole_topic(broker.bootstrap, TOPIC, PARTITIONS)
        print(f"[recovery-point] high watermarks after restart: {hws}")
        check_acked_records(load, logs)
    finally:
        broker.stop()
