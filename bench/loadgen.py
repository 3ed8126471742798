"""Run a group of worker processes (workers.py) together and collect their results.

Each worker is a separate Python process with its own librdkafka client. The
group starts them, waits until every one says it is ready (connected, metadata
fetched), sends them all one start time on stdin, and reads one JSON result from
each. Worker stderr goes to a log file in the work dir, shown when a worker fails.
"""

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Producer

WORKER = Path(__file__).resolve().parent / "workers.py"
READY_TIMEOUT_S = 60.0
# Head start given after the last worker is ready, so all see the same start time.
START_LEAD_S = 0.3
# A worker's run takes its duration plus flush; beyond this extra it is stuck.
RESULT_TIMEOUT_EXTRA_S = 180.0
LOG_TAIL_CHARS = 2000


class LoadError(RuntimeError):
    """A worker failed to start, to report, or reported an error."""


def _read_json_line(proc, deadline, what, log_path):
    """Next JSON line from a worker's stdout before `deadline` (monotonic)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LoadError(f"worker pid {proc.pid}: no {what} in time\n{_tail(log_path)}")
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=10)
            raise LoadError(f"worker pid {proc.pid} exited ({proc.returncode}) before its {what}\n"
                            f"{_tail(log_path)}")
        try:
            return json.loads(line)
        except ValueError:
            continue  # not ours (a library printing to stdout); keep reading


def _tail(path):
    try:
        return Path(path).read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return "(no worker log)"


def run_group(specs, duration_s, log_dir, on_started=None, worker=WORKER):
    """Run workers together. `specs` is a list of argument lists for `worker` (workers.py, or another
    script that follows its ready / start-time / one-JSON-result protocol, e.g. rawclients.py).

    Returns their result dicts in the order of `specs`. `on_started(start_at)`
    is called once the start time is sent (the driver samples broker CPU there).
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for i, args in enumerate(specs):
            log_path = log_dir / f"worker-{int(time.time() * 1000)}-{i}.log"
            log = open(log_path, "ab")
            p = subprocess.Popen([sys.executable, str(worker), *args],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
            log.close()
            procs.append((p, log_path))
        ready_deadline = time.monotonic() + READY_TIMEOUT_S
        for p, log_path in procs:
            msg = _read_json_line(p, ready_deadline, "ready line", log_path)
            if not msg.get("ready"):
                raise LoadError(f"worker pid {p.pid} failed before starting: {msg}")
        start_at = time.time() + START_LEAD_S
        for p, _ in procs:
            p.stdin.write(f"{start_at}\n")
            p.stdin.flush()
        if on_started:
            on_started(start_at)
        result_deadline = time.monotonic() + START_LEAD_S + duration_s + RESULT_TIMEOUT_EXTRA_S
        results = []
        for p, log_path in procs:
            res = _read_json_line(p, result_deadline, "result", log_path)
            p.wait(timeout=30)
            results.append(res)
        return results
    finally:
        for p, _ in procs:
            if p.poll() is None:
                os.kill(p.pid, 9)
                p.wait()


def wait_writable(bootstrap, name, partitions, timeout_s):
    """One acks=all record to every partition, acknowledged, before a run starts: CreateTopics
    answers once the metadata is committed, but on a cluster each partition's leader and followers
    are still taking up their roles, and the first produce requests would wait for that (seen as a
    p99 of 90 ms at 1,000 records/s on three nodes, every slow sample in the first moments)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "log_level": 4,
                  "message.timeout.ms": int(timeout_s * 1000)})
    failed = []
    for part in range(partitions):
        p.produce(name, b"ready", partition=part, on_delivery=lambda err, _msg: err and failed.append(err))
    left = p.flush(timeout_s)
    if left or failed:
        raise LoadError(f"topic {name} not writable within {timeout_s:.0f}s: {left} unacknowledged, "
                        f"errors {failed[:3]}")

