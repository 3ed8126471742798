"""Chronik benchmark driver: machine ceilings, then produce, consume and latency runs, then Chronik
side by side with the peer broker Tansu when it is installed (bench/peer.py), then the
many-partitions and many-clients rows (bench/manyparts.py, bench/manyclients.py), then the catch-up of
replicas moved onto a fourth node (bench/catchup.py), then the restart time after kill -9 with a big log
(bench/restart.py).

Run through `scripts/bench` (which builds the release binary and the .venv first);
see docs/BENCHMARKS.md for the method and how to read the table.
"""

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import brokermetrics
import catchup
import ceilings
import diskquiet
import manyclients
import manyparts
import peer
import procstat
import rdkperf
import report
import restart
from loadgen import LoadError, run_group, wait_writable
from stats import percentile
from targets import DEFAULT_FSYNC, ClusterUnavailable, SingleNode, ThreeNodeCluster

RECORD_SIZES_BYTES = (100, 1024)
ACKS = ("1", "all")
LATENCY_RECORD_BYTES = 1024
# Latency runs produce at this fraction of the measured 1 KiB acks=all peak.
LATENCY_RATE_FRACTION = 0.5
# A second latency run at a low fixed rate shows the broker's latency when the
# load generator is far from saturating the machine's two cores.
LATENCY_LOW_RATE = 1000.0
# Writers of the second fsync-latency ceiling: one per node of the three-node cluster, all on one disk.
FSYNC_WRITERS_CLUSTER = 3
TOPIC_CREATE_TIMEOUT_S = 30.0
WATERMARK_TIMEOUT_S = 10.0
E2E_GRACE_S = 3.0
# First guess of the C generator's rate (records/s) to size a run of the wanted length;
# later repeats use the rate the previous run reached.
C_RATE_GUESS = {100: 800_000, 1024: 250_000}
# Largest run of the C generator, whatever rate it reached before.
C_RUN_BYTES_MAX = 4 * 2**30
# Row groups that have a --<group>-only option (and a --no-<group> one).
ONLY_GROUPS = ("peer", "many_partitions", "many_clients", "catch_up", "restart")
# Stop before a run when less than this is free where the brokers write.
DISK_FREE_MIN_BYTES = 12 * 2**30


class Mode:
    """Sizes of one benchmark run; --quick shrinks everything to ~5 minutes (catch-up rows included)."""

    def __init__(self, quick, repeats, producers, partitions):
        self.quick = quick
        self.repeats = repeats if repeats else 3
        self.producers = producers
        self.partitions = partitions
        self.consumers = 2
        # None: librdkafka's default fetch.wait.max.ms (500 ms), what a user gets.
        self.fetch_wait_ms = None
        self.produce_s = 2.0 if quick else 8.0
        self.latency_s = 3.0 if quick else 10.0
        self.loopback_s = 1 if quick else 3
        self.seqwrite_bytes = (64 if quick else 512) * ceilings.MIB
        self.fsync_count = 200 if quick else 1000
        # Configurations the C generator (rdkafka_performance) runs, when available.
        self.c_acks = ("all",) if quick else ACKS
        self.rdkperf = None


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- ceilings ---------------------------------------------------------------

def measure_ceilings(mode, data_dir):
    out = {"loopback_mb_s": [], "seqwrite_mb_s": [], "fsync_p50_ms": [], "fsync_p99_ms": [],
           "fsync3_p50_ms": [], "fsync3_p99_ms": []}
    port = None
    for i in range(mode.repeats):
        from chronik_broker import free_ports  # the harness's port picker
        port = free_ports(1)[0]
        mb_s, tool = ceilings.loopback_mb_s(mode.loopback_s, port)
        out["loopback_mb_s"].append(mb_s)
        out["loopback_tool"] = tool
        out["seqwrite_mb_s"].append(ceilings.sequential_fsync_mb_s(data_dir, mode.seqwrite_bytes))
        p50, p99 = ceilings.fsync_latency_ms(data_dir, mode.fsync_count)
        out["fsync_p50_ms"].append(p50)
        out["fsync_p99_ms"].append(p99)
        p50_3, p99_3 = ceilings.fsync_latency_ms(data_dir, mode.fsync_count, writers=FSYNC_WRITERS_CLUSTER)
        out["fsync3_p50_ms"].append(p50_3)
        out["fsync3_p99_ms"].append(p99_3)
        log(f"ceilings #{i + 1}: loopback {mb_s:.0f} MB/s ({tool}), "
            f"seq write+fsync/MiB {out['seqwrite_mb_s'][-1]:.0f} MB/s, fsync p50 {p50:.2f} ms p99 {p99:.2f} ms, "
            f"{FSYNC_WRITERS_CLUSTER} writers at once p50 {p50_3:.2f} ms p99 {p99_3:.2f} ms")
    return out


# ---- helpers ----------------------------------------------------------------

def create_topic(target, name, partitions):
    check_disk_free(target)
    admin = AdminClient({"bootstrap.servers": target.bootstrap, "log_level": 4})
    futures = admin.create_topics([NewTopic(name, partitions, target.replication)])
    futures[name].result(timeout=TOPIC_CREATE_TIMEOUT_S)
    wait_writable(target.bootstrap, name, partitions, TOPIC_CREATE_TIMEOUT_S)


def delete_topic(target, name):
    """Delete a topic once measured, so a fast machine does not fill its disk (runs write GBs)."""
    admin = AdminClient({"bootstrap.servers": target.bootstrap, "log_level": 4})
    try:
        admin.delete_topics([name])[name].result(timeout=TOPIC_CREATE_TIMEOUT_S)
    except Exception as e:  # a leftover topic only costs disk space, checked before each run
        log(f"could not delete topic {name}: {e}")


def check_disk_free(target):
    st = shutil.disk_usage(target.workdir)
    if st.free < DISK_FREE_MIN_BYTES:
        raise LoadError(f"only {st.free / 2**30:.1f} GiB free under {target.workdir}; "
                        f"the benchmark needs at least {DISK_FREE_MIN_BYTES / 2**30:.0f} GiB")


def end_offsets(target, topic, partitions):
    c = Consumer({"bootstrap.servers": target.bootstrap, "group.id": "bench-watermarks", "log_level": 4})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=WATERMARK_TIMEOUT_S)[1]
                for p in range(partitions)]
    finally:
        c.close()


def broker_cpu(target):
    return sum(procstat.cpu_seconds(pid) for pid in target.pids)


def fmt_ms(out, name):
    return "/".join("—" if out[f"{name}_{k}_ms"] is None else f"{out[f'{name}_{k}_ms']:.2f}"
                    for k in ("p50", "p99", "p999"))


def split_partitions(partitions, groups):
    return [",".join(str(p) for p in range(partitions) if p % groups == g) for g in range(groups)]


# ---- produce ----------------------------------------------------------------

def measure_produce(target, mode, size, acks, rep, log_dir):
    topic = f"bench-produce-{size}b-acks{acks}-{rep}"
    create_topic(target, topic, mode.partitions)
    spec = ["produce", "--bootstrap", target.bootstrap, "--topic", topic, "--size", str(size),
            "--acks", acks, "--duration", str(mode.produce_s)]
    cpu0 = broker_cpu(target)
    results = run_group([spec] * mode.producers, mode.produce_s, log_dir)
    cpu1 = broker_cpu(target)
    errs = [r.get("error") or r.get("first_error") for r in results if r.get("error") or r.get("errors")]
    if any(r.get("error") for r in results):
        raise LoadError(f"{topic}: {errs[0]}")
    acked = sum(r["acked"] for r in results)
    if acked == 0:
        unflushed = sum(r["unflushed"] for r in results)
        raise LoadError(f"{topic}: the broker acknowledged no record ({unflushed} still unacknowledged "
                        f"after the flush timeout)")
    nbytes = sum(r["bytes"] for r in results)
    wall = max(r["t_end"] for r in results) - min(r["t_start"] for r in results)
    out = {
        "topic": topic, "records": acked, "bytes": nbytes, "wall_s": wall,
        "rec_s": acked / wall, "mb_s": nbytes / wall / 1e6,
        "broker_cpu_s": cpu1 - cpu0, "broker_cores": (cpu1 - cpu0) / wall,
        "client_cores": sum(r["cpu_s"] for r in results) / wall,
        "cpu_s_per_gb": (cpu1 - cpu0) / (nbytes / 1e9) if nbytes else None,
        "delivery_errors": sum(r["errors"] for r in results), "first_error": errs[0] if errs else None,
    }
    log(f"{target.label} produce {size} B acks={acks} #{rep + 1}: {out['rec_s']:,.0f} rec/s "
        f"{out['mb_s']:.1f} MB/s, broker {out['broker_cores']:.2f} cores, "
        f"clients {out['client_cores']:.2f} cores, errors {out['delivery_errors']}")
    return out


# ---- consume ----------------------------------------------------------------

def measure_consume(target, mode, topic, rep, log_dir, limit=None, fetch_wait_ms=None):
    """Read `topic` from the start: all of it, or about `limit` records (each consumer its share);
    `fetch_wait_ms` sets the consumers' fetch.wait.max.ms (default: librdkafka's, 500 ms)."""
    ends = end_offsets(target, topic, mode.partitions)
    groups = split_partitions(mode.partitions, mode.consumers)
    scale = 1.0 if limit is None or not sum(ends) else min(1.0, limit / sum(ends))
    specs = []
    for g in groups:
        expect = int(sum(ends[int(p)] for p in g.split(",")) * scale)
        specs.append(["consume", "--bootstrap", target.bootstrap, "--topic", topic,
                      "--partitions", g, "--expect", str(expect)]
                     + ([] if fetch_wait_ms is None else ["--fetch-wait-ms", str(fetch_wait_ms)]))
    cpu0 = broker_cpu(target)
    results = run_group(specs, 60.0, log_dir)
    cpu1 = broker_cpu(target)
    errors = [r["error"] for r in results if r.get("error")]
    if errors:
        raise LoadError(f"consume {topic}: {errors[0]}")
    records = sum(r["records"] for r in results)
    nbytes = sum(r["bytes"] for r in results)
    wall = max(r["t_end"] for r in results) - min(r["t_start"] for r in results)
    out = {"topic": topic, "records": records, "expected": int(sum(ends) * scale), "bytes": nbytes,
           "wall_s": wall, "mb_s": nbytes / wall / 1e6, "rec_s": records / wall,
           "broker_cores": (cpu1 - cpu0) / wall,
           "client_cores": sum(r["cpu_s"] for r in results) / wall}
    log(f"{target.label} consume #{rep + 1}: {records:,} records {out['mb_s']:.1f} MB/s "
        f"in {wall:.1f}s, broker {out['broker_cores']:.2f} cores, clients {out['client_cores']:.2f} cores")
    return out


# ---- latency ----------------------------------------------------------------

def measure_latency(target, mode, rate, rep, log_dir, tag="half-peak"):
    topic = f"bench-latency-{tag}-{rep}"
    create_topic(target, topic, mode.partitions)
    per_producer = rate / mode.producers
    prod = ["rate", "--bootstrap", target.bootstrap, "--topic", topic, "--size",
            str(LATENCY_RECORD_BYTES), "--acks", "all", "--duration", str(mode.latency_s),
            "--rate", f"{per_producer:.1f}"]
    e2e = ["e2e", "--bootstrap", target.bootstrap, "--topic", topic,
           "--partitions", ",".join(str(p) for p in range(mode.partitions)),
           "--duration", str(mode.latency_s), "--grace", str(E2E_GRACE_S)]
    if mode.fetch_wait_ms is not None:
        e2e += ["--fetch-wait-ms", str(mode.fetch_wait_ms)]
    quiet_s = diskquiet.wait_quiet(target.workdir, log)
    before = brokermetrics.snapshot(target.admin_addrs)
    results = run_group([e2e] + [prod] * mode.producers, mode.latency_s + E2E_GRACE_S, log_dir)
    broker_view = brokermetrics.summary(before, brokermetrics.snapshot(target.admin_addrs))
    errors = [r.get("error") or r.get("first_error") for r in results
              if r.get("error") or r.get("errors")]
    if any(r.get("error") and "latencies_ms" not in r for r in results):
        raise LoadError(f"latency {topic}: {errors[0]}")
    e2e_lat = sorted(results[0]["latencies_ms"])
    prod_lat = sorted(x for r in results[1:] for x in r["latencies_ms"])
    wall = max(r["t_end"] for r in results[1:]) - min(r["t_start"] for r in results[1:])
    out = {"target_rate": rate, "achieved_rate": len(prod_lat) / wall, "acked": len(prod_lat),
           "sent": sum(r["sent"] for r in results[1:]), "e2e_records": len(e2e_lat),
           "errors": errors[:3], "e2e_client_cores": results[0]["cpu_s"] / (wall + E2E_GRACE_S),
           "disk_quiet_wait_s": quiet_s, "broker_view": broker_view}
    for name, lat in (("produce", prod_lat), ("e2e", e2e_lat)):
        for pct, key in ((50, "p50"), (99, "p99"), (99.9, "p999")):
            out[f"{name}_{key}_ms"] = percentile(lat, pct)
    log(f"{target.label} latency #{rep + 1} at {rate:,.0f} rec/s (achieved {out['achieved_rate']:,.0f}): "
        f"produce p50/p99/p99.9 {fmt_ms(out, 'produce')} ms; "
        f"e2e {fmt_ms(out, 'e2e')} ms ({len(e2e_lat)} records, consumer {out['e2e_client_cores']:.2f} cores); "
        f"{brokermetrics.describe(broker_view)}")
    return out


# ---- C load generator (optional) ------------------------------------------

def measure_produce_c(target, mode, size, acks, rep, rate_guess):
    topic = f"bench-c-produce-{size}b-acks{acks}-{rep}"
    create_topic(target, topic, mode.partitions)
    count = max(1000, min(int(rate_guess * mode.produce_s), C_RUN_BYTES_MAX // size))
    cpu0 = broker_cpu(target)
    delivered, failed, secs = rdkperf.produce(mode.rdkperf, target.bootstrap, topic, size, acks, count,
                                              mode.produce_s * 10)
    cpu1 = broker_cpu(target)
    nbytes = delivered * size
    out = {"topic": topic, "records": delivered, "bytes": nbytes, "wall_s": secs,
           "rec_s": delivered / secs, "mb_s": nbytes / secs / 1e6, "broker_cpu_s": cpu1 - cpu0,
           "broker_cores": (cpu1 - cpu0) / secs, "client_cores": None,
           "cpu_s_per_gb": (cpu1 - cpu0) / (nbytes / 1e9) if nbytes else None,
           "delivery_errors": failed, "first_error": None}
    log(f"{target.label} C produce {size} B acks={acks} #{rep + 1}: {out['rec_s']:,.0f} rec/s "
        f"{out['mb_s']:.1f} MB/s, broker {out['broker_cores']:.2f} cores, failed {failed}")
    return out


def measure_consume_c(target, mode, topic, rep):
    ends = end_offsets(target, topic, mode.partitions)
    cpu0 = broker_cpu(target)
    records, nbytes, secs = rdkperf.consume(mode.rdkperf, target.bootstrap, topic,
                                            range(mode.partitions), sum(ends), 60.0)
    cpu1 = broker_cpu(target)
    out = {"topic": topic, "records": records, "expected": sum(ends), "bytes": nbytes, "wall_s": secs,
           "mb_s": nbytes / secs / 1e6, "rec_s": records / secs, "broker_cores": (cpu1 - cpu0) / secs,
           "client_cores": None}
    log(f"{target.label} C consume #{rep + 1}: {records:,} records {out['mb_s']:.1f} MB/s in {secs:.1f}s, "
        f"broker {out['broker_cores']:.2f} cores")
    return out


def measure_latency_c(target, mode, rate, rep, log_dir, tag="half-peak"):
    """Produce latency with rdkafka_performance rate-limited to `rate` (1 KiB, acks=all)."""
    topic = f"bench-c-latency-{tag}-{rep}"
    create_topic(target, topic, mode.partitions)
    count = max(1000, int(rate * mode.latency_s))
    quiet_s = diskquiet.wait_quiet(target.workdir, log)
    before = brokermetrics.snapshot(target.admin_addrs)
    cpu0 = broker_cpu(target)
    lat, secs = rdkperf.latency(mode.rdkperf, target.bootstrap, topic, LATENCY_RECORD_BYTES, rate, count,
                                log_dir, mode.latency_s * 10)
    cpu1 = broker_cpu(target)
    broker_view = brokermetrics.summary(before, brokermetrics.snapshot(target.admin_addrs))
    lat.sort()
    out = {"target_rate": rate, "achieved_rate": count / secs, "samples": len(lat),
           "broker_cores": (cpu1 - cpu0) / secs, "disk_quiet_wait_s": quiet_s, "broker_view": broker_view}
    for pct, key in ((50, "p50"), (99, "p99"), (99.9, "p999")):
        out[f"produce_{key}_ms"] = percentile(lat, pct)
    log(f"{target.label} C latency #{rep + 1} at {rate:,.0f} rec/s (achieved {out['achieved_rate']:,.0f}): "
        f"produce p50/p99/p99.9 {fmt_ms(out, 'produce')} ms, broker {out['broker_cores']:.2f} cores; "
        f"{brokermetrics.describe(broker_view)}")
    delete_topic(target, topic)
    return out


def bench_target_c(target, mode, res, log_dir):
    res["c_produce"] = {}
    keep = None  # the largest 1 KiB topic so far: the consume runs read it
    for size in RECORD_SIZES_BYTES:
        for acks in mode.c_acks:
            guess = C_RATE_GUESS[size]
            runs = []
            for rep in range(mode.repeats):
                runs.append(measure_produce_c(target, mode, size, acks, rep, guess))
                guess = runs[-1]["rec_s"]
                keep = keep_largest(target, runs[-1], keep, size)
            res["c_produce"][f"{size}/{acks}"] = runs
    res["c_consume"] = [measure_consume_c(target, mode, keep["topic"], rep) for rep in range(mode.repeats)]
    delete_topic(target, keep["topic"])
    peak = sorted(r["rec_s"] for r in res["c_produce"][f"{LATENCY_RECORD_BYTES}/all"])
    rate = LATENCY_RATE_FRACTION * peak[len(peak) // 2]
    res["c_latency"] = [measure_latency_c(target, mode, rate, rep, log_dir) for rep in range(mode.repeats)]
    res["c_latency_low"] = [measure_latency_c(target, mode, LATENCY_LOW_RATE, rep, log_dir, tag="low")
                            for rep in range(mode.repeats)]


def keep_largest(target, run, keep, size):
    """Keep the run's topic if it is the largest 1 KiB topic so far; delete the other one."""
    if size == max(RECORD_SIZES_BYTES) and (keep is None or run["bytes"] > keep["bytes"]):
        if keep is not None:
            delete_topic(target, keep["topic"])
        return run
    delete_topic(target, run["topic"])
    return keep


# ---- one target -------------------------------------------------------------

def bench_target(target, mode, log_dir):
    res = {"label": target.label, "produce": {}, "consume": [], "latency": []}
    keep = None  # the largest 1 KiB topic so far: the consume runs read it from the start
    for size in RECORD_SIZES_BYTES:
        for acks in ACKS:
            runs = []
            for rep in range(mode.repeats):
                runs.append(measure_produce(target, mode, size, acks, rep, log_dir))
                keep = keep_largest(target, runs[-1], keep, size)
            res["produce"][f"{size}/{acks}"] = runs
    res["consume"] = [measure_consume(target, mode, keep["topic"], rep, log_dir)
                      for rep in range(mode.repeats)]
    delete_topic(target, keep["topic"])
    peak = sorted(r["rec_s"] for r in res["produce"][f"{LATENCY_RECORD_BYTES}/all"])
    rate = LATENCY_RATE_FRACTION * peak[len(peak) // 2]
    res["latency"] = [measure_latency(target, mode, rate, rep, log_dir) for rep in range(mode.repeats)]
    res["latency_low"] = [measure_latency(target, mode, LATENCY_LOW_RATE, rep, log_dir, tag="low")
                          for rep in range(mode.repeats)]
    for rep in range(mode.repeats):
        for tag in ("half-peak", "low"):
            delete_topic(target, f"bench-latency-{tag}-{rep}")
    if mode.rdkperf:
        bench_target_c(target, mode, res, log_dir)
    res["peak_rss_mib"] = max(procstat.peak_rss_mib(pid) or 0 for pid in target.pids)
    res["rss_anon_mib"] = max((procstat.status_kib(pid, "RssAnon") or 0) / 1024 for pid in target.pids)
    return res


def bench_latency_only(target, mode, log_dir, c_rate):
    """The latency rows alone, at 1,000 records/s with both clients and, with the C generator, at
    `c_rate` (the ½ C peak the same target reached with the default fsync), so a target with another
    fsync mode is compared at the same offered load."""
    res = {"label": target.label, "latency_only": True,
           "latency_low": [measure_latency(target, mode, LATENCY_LOW_RATE, rep, log_dir, tag="low")
                           for rep in range(mode.repeats)]}
    if mode.rdkperf:
        if c_rate:
            res["c_latency"] = [measure_latency_c(target, mode, c_rate, rep, log_dir)
                                for rep in range(mode.repeats)]
        res["c_latency_low"] = [measure_latency_c(target, mode, LATENCY_LOW_RATE, rep, log_dir, tag="low")
                                for rep in range(mode.repeats)]
    return res


def c_half_peak(res):
    """The rate the C latency rows of a full target ran at, or None."""
    lat = res.get("c_latency") or []
    return lat[0]["target_rate"] if lat else None


def run_target(cls, workdir, mode, log_dir, fsync=DEFAULT_FSYNC, c_rate=None):
    """Benchmarks one target; with another `fsync` mode than the default, only its latency rows."""
    target = cls(workdir, mode.partitions, fsync=fsync)
    log(f"starting {target.label} in {workdir}")
    try:
        target.start()
    except ClusterUnavailable as e:
        log(f"{target.label}: unavailable: {e}")
        return {"label": target.label, "unavailable": str(e)}
    try:
        if fsync != DEFAULT_FSYNC:
            res = bench_latency_only(target, mode, log_dir, c_rate)
        else:
            res = bench_target(target, mode, log_dir)
        res.update(fsync=fsync, replication=target.replication)
        return res
    except Exception:
        print(target.log_tail(), file=sys.stderr)
        raise
    finally:
        target.stop()


def stop_on_signal(signum, _frame):
    """SIGTERM/SIGINT: unwind through the `finally` blocks so brokers and workers are stopped."""
    raise SystemExit(128 + signum)


def main():
    # A background job may start with SIGINT ignored; the benchmark must still clean up.
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    ap = argparse.ArgumentParser(description="Chronik benchmark (see docs/BENCHMARKS.md)")
    ap.add_argument("--quick", action="store_true", help="short runs: about 5 minutes in all")
    ap.add_argument("--repeats", type=int, default=0, help="runs per measurement (default 3)")
    ap.add_argument("--producers", type=int, default=3, help="producer processes (default 3)")
    ap.add_argument("--partitions", type=int, default=6, help="partitions per topic (default 6)")
    ap.add_argument("--single-only", action="store_true", help="skip the three-node cluster")
    ap.add_argument("--cluster-only", action="store_true", help="skip the single node")
    ap.add_argument("--no-c", action="store_true", help="skip the rdkafka_performance (C client) rows")
    ap.add_argument("--catch-up-only", action="store_true",
                    help="only the ceilings and the catch-up rows (a fourth node joins three)")
    ap.add_argument("--no-catch-up", action="store_true", help="skip the catch-up rows")
    ap.add_argument("--restart-only", action="store_true",
                    help="only the ceilings and the restart-after-kill-9 rows (1 GiB; 5 and 20 GiB too without --quick)")
    ap.add_argument("--restart-gib", type=int, nargs="+", metavar="GIB",
                    help="the restart rows' log sizes in GiB (default: 1, or 1 5 20 without --quick)")
    ap.add_argument("--no-restart", action="store_true", help="skip the restart rows")
    ap.add_argument("--many-partitions-only", action="store_true",
                    help="only the ceilings and the many-partitions row (10,000 partitions on one node)")
    ap.add_argument("--no-many-partitions", action="store_true", help="skip the many-partitions row")
    ap.add_argument("--many-clients-only", action="store_true",
                    help="only the ceilings and the many-clients row (1,000 idle connections, 200 producers)")
    ap.add_argument("--no-many-clients", action="store_true", help="skip the many-clients row")
    ap.add_argument("--peer-only", action="store_true",
                    help="only the ceilings and the side-by-side rows with Tansu (when installed)")
    ap.add_argument("--no-peer", action="store_true", help="skip the side-by-side rows with Tansu")
    ap.add_argument("--no-fsync-never", action="store_true",
                    help="skip the latency rows of each target again with fsync=never")
    ap.add_argument("--workdir", help="where brokers keep data (default: a new temp dir, removed after)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (data, logs)")
    ap.add_argument("--json", help="also write every raw figure to this file")
    ap.add_argument("--markdown", help="also write the table to this file")
    args = ap.parse_args()
    mode = Mode(args.quick, args.repeats, args.producers, args.partitions)
    mode.rdkperf, c_how = (None, "skipped (--no-c)") if args.no_c else rdkperf.find_or_build()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="chronik-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log_dir = workdir / "worker-logs"
    started = time.time()
    results = {"mode": "quick" if mode.quick else "full", "repeats": mode.repeats,
               "producers": mode.producers, "consumers": mode.consumers, "partitions": mode.partitions,
               "load_1m_before": procstat.load_average_1m(), "workdir": str(workdir),
               "c_loadgen": {"path": mode.rdkperf, "how": c_how}}
    try:
        log(f"work dir {workdir}; load average {results['load_1m_before']:.2f}; "
            f"C load generator: {mode.rdkperf or 'none'} ({c_how})")
        results["ceilings"] = measure_ceilings(mode, str(workdir))
        results["targets"] = []
        # With one or more --X-only options, only those groups run (after the ceilings).
        only = [g for g in ONLY_GROUPS if getattr(args, f"{g}_only")]

        def wanted(group):
            return not only or group in only
        if not only:
            for cls, name, skip in ((SingleNode, "single", args.cluster_only),
                                    (ThreeNodeCluster, "cluster", args.single_only)):
                if skip:
                    why = "skipped (--cluster-only)" if cls is SingleNode else "skipped (--single-only)"
                    results["targets"].append({"label": cls.label, "unavailable": why})
                    continue
                res = run_target(cls, workdir / name, mode, log_dir)
                results["targets"].append(res)
                if not args.no_fsync_never and "unavailable" not in res:
                    # The same latency rows without fsyncs: how much of the tail is the disk's.
                    results["targets"].append(run_target(cls, workdir / f"{name}-fsync-never", mode, log_dir,
                                                         fsync="never", c_rate=c_half_peak(res)))
        if wanted("peer") and not (args.no_peer or args.cluster_only):
            log("peer: Chronik (one node) and Tansu (in-memory engine) side by side, same client")
            results["peer"] = peer.run(workdir / "peer", mode, log_dir, log,
                                       measure_produce, measure_consume, delete_topic)
        if wanted("many_partitions") and not (args.no_many_partitions or args.cluster_only):
            log("many partitions: 10,000 partitions on one node")
            results["many_partitions"] = manyparts.run(workdir / "many-partitions", mode.quick, log)
        if wanted("many_clients") and not (args.no_many_clients or args.cluster_only):
            log(f"many clients: {manyclients.IDLE_CONNECTIONS:,} idle connections and "
                f"{manyclients.PRODUCERS} producers on one node")
            results["many_clients"] = manyclients.run(workdir / "many-clients", mode.quick, log)
        if wanted("catch_up") and not (args.no_catch_up or args.single_only):
            log("catch-up: three nodes, then a fourth joins and the rebalancer moves replicas onto it")
            results["catch_up"] = catchup.run(workdir / "catch-up", mode.quick, log_dir, log)
        if wanted("restart") and not args.no_restart:
            log("restart: a single node with a big log, kill -9, timed restarts with and without recovery points")
            sizes = [g * restart.GIB for g in args.restart_gib] if args.restart_gib else None
            results["restart"] = restart.run(workdir / "restart", mode.quick, log, keep=args.keep, sizes=sizes)
    finally:
        # Remove the data first: the JSON below may fail, e.g. on a full disk.
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        results["elapsed_s"] = time.time() - started
        results["load_1m_after"] = procstat.load_average_1m()
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    table = report.render(results)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
