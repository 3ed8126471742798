"""Many partitions on one node: what 10,000 partitions cost a broker (docs/BENCHMARKS.md, issue 15).

One broker (fsync always, RF 1). The driver:
1. raises its own RLIMIT_NOFILE (inherited by the broker) to what the partitions need by the rule of
   docs/OPERATIONS.md (1 per partition + 2 per partition written + connections + 1000) when the hard limit allows it or we may
   raise the hard limit (root); otherwise the broker's own budget check refuses what does not fit, and
   the row says how far it got;
2. creates TOPICS topics of PARTITIONS_PER_TOPIC partitions, one CreateTopics each (confluent-kafka
   AdminClient), timing each and the total;
3. times Metadata for all topics (v1, one raw request on its own connection) METADATA_SAMPLES times;
4. reads the broker's RssAnon and open descriptors (/proc/<pid>/status, /proc/<pid>/fd);
5. waits IDLE_SETTLE_S, then measures CPU (utime + stime) over IDLE_WINDOW_S with nothing to do;
6. produces 1 KiB records (acks=1, one confluent-kafka producer) for PRODUCE_S to a topic of one
   partition, then spread over the first topic's partitions, and gives the ratio; each partition first
   takes one record that is not timed (the first write of a partition faults in its index pages).
Nothing is asserted; the report prints each figure beside its target.
"""

import os
import resource
import struct
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

import procstat
from stats import percentile
from targets import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "python"))

from chronik_broker import Broker  # noqa: E402
from kafka_helpers import _raw_call  # noqa: E402

TOPICS = {"full": 10, "quick": 2}
PARTITIONS_PER_TOPIC = 1000
# Descriptors per partition and the reserve: the broker's own rule (chronik-server/src/fd_limit.rs).
FDS_PER_PARTITION = 1
# A partition taking writes holds its two index files open until its next recovery point.
FDS_PER_WRITTEN_PARTITION = 2
FDS_RESERVED = 1000
FDS_CONNECTIONS_ALLOWANCE = 1000
CREATE_TIMEOUT_S = 300
METADATA_SAMPLES = {"full": 50, "quick": 20}
IDLE_SETTLE_S = 5
IDLE_WINDOW_S = 10
PRODUCE_S = {"full": 10, "quick": 5}
VALUE_BYTES = 1024
# Targets (issue 15).
RSS_ANON_TARGET_MIB = 1024
SPREAD_RATIO_TARGET = 0.70


def raise_fd_limit(partitions):
    """Raise this process's descriptor limit (the broker inherits it) to the documented need."""
    want = (FDS_PER_PARTITION * partitions + FDS_PER_WRITTEN_PARTITION * PARTITIONS_PER_TOPIC
            + FDS_CONNECTIONS_ALLOWANCE + FDS_RESERVED)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return {"limit": want, "how": f"raised soft and hard from {soft}/{hard} (root)"}
        except (ValueError, OSError) as e:
            return {"limit": hard, "how": f"hard limit {hard} below the {want} needed, cannot raise: {e}"}
    return {"limit": hard, "how": f"hard limit {hard} (the broker raises its soft limit to it)"}


def rss_anon_mib(pid):
    kib = procstat.status_kib(pid, "RssAnon")
    return None if kib is None else kib / 1024.0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def metadata_ms(bootstrap, samples):
    out = []
    for i in range(samples):
        t = time.monotonic()
        _raw_call(bootstrap, 3, 1, struct.pack(">i", -1), 100 + i)
        out.append((time.monotonic() - t) * 1000)
    return sorted(out)


def produce_rate(bootstrap, topic, partitions, seconds):
    """Records/s one producer gets for `seconds`, round-robin over `partitions` partitions."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 5, "batch.size": 256 * 1024,
                  "queue.buffering.max.kbytes": 256 * 1024, "enable.idempotence": False})
    value = os.urandom(VALUE_BYTES)
    # Warm-up, not timed: one acknowledged record per partition, so the run does not time each
    # partition's first write (first page of its segment and index in the page cache).
    for i in range(partitions):
        p.produce(topic, value, partition=i)
    p.flush(60)
    sent = 0
    delivered = [0]

    def done(err, _msg):
        if err is None:
            delivered[0] += 1

    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            p.produce(topic, value, partition=sent % partitions, on_delivery=done)
            sent += 1
        except BufferError:
            p.poll(0.01)
        if sent % 1000 == 0:
            p.poll(0)
    p.flush(60)
    return delivered[0] / (time.monotonic() - start)


def run(workdir, quick, log):
    key = "quick" if quick else "full"
    topics = TOPICS[key]
    total = topics * PARTITIONS_PER_TOPIC
    res = {"partitions_wanted": total, "fd_limit": raise_fd_limit(total)}
    log(f"many partitions: {total} on one node; descriptors: {res['fd_limit']['how']}")
    Path(workdir).mkdir(parents=True, exist_ok=True)
    broker = Broker(Path(tempfile.mkdtemp(dir=workdir)), extra_config="")
    broker.start()
    try:
        pid = broker.proc.pid
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        created, per_topic = 0, []
        t0 = time.monotonic()
        for i in range(topics):
            name = f"many-{i}"
            t = time.monotonic()
            try:
                admin.create_topics([NewTopic(name, PARTITIONS_PER_TOPIC, 1)], operation_timeout=CREATE_TIMEOUT_S)[name].result(
                    timeout=CREATE_TIMEOUT_S + 30)
            except Exception as e:  # the broker's refusal (POLICY_VIOLATION) or a timeout
                res["create_error"] = f"topic {i}: {e}"
                log(f"many partitions: creating {name} failed: {e}")
                break
            per_topic.append(time.monotonic() - t)
            created += PARTITIONS_PER_TOPIC
            log(f"many partitions: {name} in {per_topic[-1]:.1f} s ({created} partitions, {open_fds(pid)} fds)")
        res.update(partitions_created=created, create_s=time.monotonic() - t0, create_per_topic_s=per_topic)
        lat = metadata_ms(broker.bootstrap, METADATA_SAMPLES[key])
        res.update(metadata_p50_ms=percentile(lat, 50), metadata_p99_ms=percentile(lat, 99))
        res.update(rss_anon_mib=rss_anon_mib(pid), fds=open_fds(pid))
        time.sleep(IDLE_SETTLE_S)
        c0 = procstat.cpu_seconds(pid)
        time.sleep(IDLE_WINDOW_S)
        res["idle_cpu_pct"] = (procstat.cpu_seconds(pid) - c0) / IDLE_WINDOW_S * 100
        log(f"many partitions: idle CPU {res['idle_cpu_pct']:.2f} %")
        if created:
            admin.create_topics([NewTopic("many-one", 1, 1)])["many-one"].result(timeout=60)
            seconds = PRODUCE_S[key]
            res["produce_one_rps"] = produce_rate(broker.bootstrap, "many-one", 1, seconds)
            res["produce_spread_rps"] = produce_rate(broker.bootstrap, "many-0", PARTITIONS_PER_TOPIC, seconds)
            res["spread_partitions"] = PARTITIONS_PER_TOPIC
            res["rss_anon_after_produce_mib"] = rss_anon_mib(pid)
    finally:
        broker.stop()
    return res


def _f(v, digits=1):
    return "n/a" if v is None else f"{v:.{digits}f}"


def render(r):
    """Markdown lines for the report."""
    lim = r["fd_limit"]
    created = r.get("partitions_created", 0)
    ratio = None
    if r.get("produce_one_rps"):
        ratio = r.get("produce_spread_rps", 0) / r["produce_one_rps"]
    rows = [
        "",
        "### Many partitions (one node)",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| partitions created | {created} of {r['partitions_wanted']} | {r['partitions_wanted']} |",
        f"| create time (1,000 per CreateTopics) | {_f(r.get('create_s'))} s "
        f"(per topic {', '.join(_f(s) for s in r.get('create_per_topic_s', []))}) | — |",
        f"| Metadata, all topics, p50 / p99 | {_f(r.get('metadata_p50_ms'))} / {_f(r.get('metadata_p99_ms'))} ms | — |",
        f"| RssAnon after creation | {_f(r.get('rss_anon_mib'))} MiB | ≤ {RSS_ANON_TARGET_MIB} MiB |",
        f"| open descriptors after creation | {r.get('fds', 'n/a')} (limit {lim['limit']}: {lim['how']}) | within the limit |",
        f"| idle CPU (utime+stime over {IDLE_WINDOW_S} s) | {_f(r.get('idle_cpu_pct'), 2)} % of a core | ~0 |",
    ]
    if ratio is not None:
        rows.append(
            f"| produce 1 KiB acks=1, one producer: {r['spread_partitions']} partitions / 1 | "
            f"{_f(r['produce_spread_rps'], 0)} / {_f(r['produce_one_rps'], 0)} rec/s = {ratio * 100:.0f} % | "
            f"≥ {SPREAD_RATIO_TARGET * 100:.0f} % |")
    if r.get("create_error"):
        rows += ["", f"Creation stopped: {r['create_error']}"]
    return rows
