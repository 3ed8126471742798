"""Wait until the disk the brokers write to has gone quiet before a latency run.

A topic deleted after the previous measurement leaves work for the disk: on a
filesystem mounted with `discard` the freed blocks are trimmed, and writeback of
earlier runs may still be going. Measured during that, a latency run reports the
previous run's cleanup as well (seen here: one node, p99 57 ms in a run started
right after deleting 14 GB of data, 2.7 ms with the same build once the disk was
idle). So the latency runs first `sync`, then wait, with a deadline, until
/proc/diskstats shows no write or discard activity on that device for QUIET_S; the
time waited is logged when the deadline passes and kept in the JSON.
"""

import os
import time
from pathlib import Path

QUIET_S = 2.0
WAIT_MAX_S = 60.0
POLL_S = 0.25
# /proc/diskstats fields after major, minor, name (0-based): 4 writes completed,
# 8 I/Os in progress, 11 discards completed (kernels >= 4.18).
WRITES, IN_FLIGHT, DISCARDS = 4, 8, 11


def device_name(path):
    """The block device name (as in /proc/diskstats) holding `path`, or None."""
    st = os.stat(path)
    link = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    try:
        return link.resolve().name
    except OSError:
        return None


def _activity(name):
    with open("/proc/diskstats") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 3 and fields[2] == name:
                rest = [int(x) for x in fields[3:]]
                discards = rest[DISCARDS] if len(rest) > DISCARDS else 0
                return rest[WRITES] + discards, rest[IN_FLIGHT]
    return None


def wait_quiet(path, log):
    """sync, then wait until the device of `path` did no writes or discards for QUIET_S (at most
    WAIT_MAX_S). Returns the seconds waited."""
    started = time.monotonic()
    os.sync()
    name = device_name(path)
    if name is None or _activity(name) is None:
        return time.monotonic() - started
    last, _ = _activity(name)
    quiet_since = time.monotonic()
    while time.monotonic() - started < WAIT_MAX_S:
        time.sleep(POLL_S)
        done, in_flight = _activity(name)
        if done != last or in_flight:
            last, quiet_since = done, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_S:
            break
    waited = time.monotonic() - started
    if waited >= WAIT_MAX_S:
        log(f"disk {name} still busy after {WAIT_MAX_S:.0f}s; measuring anyway")
    return waited
