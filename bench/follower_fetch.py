"""Follower fetch cost with many replicas (docs/BENCHMARKS.md, "follower fetch sessions"; issue 15).

A 3-node cluster (RF 3, the cluster tests' settings) of the binary in $CHRONIK_SERVER_BIN. The driver
1. creates TOPICS topics of PARTITIONS_PER_TOPIC partitions (every node then follows two thirds of them);
2. waits SETTLE_S, then reads each broker's CPU (utime + stime) and its `chronik_network_bytes_in_total`
   and `_out_total` (/metrics; the wal port, where followers fetch, counts too) over WINDOW_S, idle;
3. the same under a light produce load: RATE records/s of VALUE_BYTES, acks=all, round-robin over
   every partition, from one confluent-kafka producer.
Run it once with the old binary and once with the new one:
    CHRONIK_SERVER_BIN=... .venv/bin/python bench/follower_fetch.py [partitions_per_topic]
Nothing is asserted; it prints one line per node and phase.
"""

import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

import procstat
from targets import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "python" / "cluster"))

from chronik_cluster import started_cluster  # noqa: E402

TOPICS = 4
PARTITIONS_PER_TOPIC = 400
CREATE_TIMEOUT_S = 300
SETTLE_S = 15
WINDOW_S = 30
RATE = 200
VALUE_BYTES = 100


def counters(node):
    """{metric: value} of the node's network byte counters."""
    with urllib.request.urlopen(f"http://{node.admin_addr}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        for name in ("chronik_network_bytes_in_total", "chronik_network_bytes_out_total", 'chronik_requests_total{api="Fetch"}'):
            if line.startswith(name + " "):
                out[name] = float(line.split()[1])
    return out


def window(cluster, seconds):
    """{node: (cpu s, bytes in, bytes out, fetches)} over `seconds`."""
    before = {i: (procstat.cpu_seconds(n.proc.pid), counters(n)) for i, n in cluster.nodes.items()}
    time.sleep(seconds)
    out = {}
    for i, n in cluster.nodes.items():
        cpu0, c0 = before[i]
        c1 = counters(n)
        out[i] = (procstat.cpu_seconds(n.proc.pid) - cpu0,
                  c1["chronik_network_bytes_in_total"] - c0["chronik_network_bytes_in_total"],
                  c1["chronik_network_bytes_out_total"] - c0["chronik_network_bytes_out_total"],
                  c1.get('chronik_requests_total{api="Fetch"}', 0) - c0.get('chronik_requests_total{api="Fetch"}', 0))
    return out


def produce(bootstrap, topics, stop):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    value = os.urandom(VALUE_BYTES)
    targets = [(t, i) for t in topics for i in range(PARTITIONS_PER_TOPIC)]
    n = 0
    start = time.monotonic()
    while not stop.is_set():
        due = start + n / RATE
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        t, i = targets[n % len(targets)]
        try:
            p.produce(t, value, partition=i)
        except BufferError:
            p.poll(0.05)
        p.poll(0)
        n += 1
    p.flush(30)


def report(phase, res):
    for i, (cpu, bin_, bout, fetches) in sorted(res.items()):
        per_fetch = f"{cpu / fetches * 1e6:6.0f} µs" if fetches else "-"
        print(f"{phase:5} node {i}: cpu {cpu / WINDOW_S * 100:5.1f} % ({cpu:.2f} s / {WINDOW_S} s)  "
              f"in {bin_ / WINDOW_S / 1024:8.1f} KiB/s  out {bout / WINDOW_S / 1024:8.1f} KiB/s  "
              f"fetches served {fetches / WINDOW_S:6.1f}/s  cpu per fetch {per_fetch}", flush=True)


def main():
    global PARTITIONS_PER_TOPIC
    if len(sys.argv) > 1:
        PARTITIONS_PER_TOPIC = int(sys.argv[1])
    print(f"binary {os.environ.get('CHRONIK_SERVER_BIN')}; {TOPICS} x {PARTITIONS_PER_TOPIC} partitions RF 3", flush=True)
    with started_cluster(Path(tempfile.mkdtemp(prefix="follower-fetch-"))) as c:
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        topics = [f"ff-{i}" for i in range(TOPICS)]
        t0 = time.monotonic()
        for t in topics:
            admin.create_topics([NewTopic(t, PARTITIONS_PER_TOPIC, 3)], operation_timeout=CREATE_TIMEOUT_S)[t].result(
                timeout=CREATE_TIMEOUT_S + 30)
        for t in topics:
            c.wait_full_isr(t, timeout_s=CREATE_TIMEOUT_S)
        print(f"created and in sync in {time.monotonic() - t0:.1f} s", flush=True)
        time.sleep(SETTLE_S)
        print(f"load average before idle: {procstat.load_average_1m():.2f}", flush=True)
        report("idle", window(c, WINDOW_S))
        stop = threading.Event()
        th = threading.Thread(target=produce, args=(c.bootstrap, topics, stop), daemon=True)
        th.start()
        time.sleep(SETTLE_S)
        print(f"load average before load: {procstat.load_average_1m():.2f}", flush=True)
        report("load", window(c, WINDOW_S))
        stop.set()
        th.join(60)


if __name__ == "__main__":
    main()
