"""Many clients on one node: 1,000 idle connections and 200 active producers (docs/BENCHMARKS.md,
issue 15 item 4). Does the broker stay responsive, and what does a connection cost it in memory?

One broker (fsync always, RF 1), one topic of TOPIC_PARTITIONS partitions. The driver:
1. raises its own RLIMIT_NOFILE soft limit to the hard limit (it holds the idle sockets);
2. probes Metadata alone for BASELINE_PROBE_S (the figure without other clients) and reads the
   broker's RssAnon and open descriptors (/proc/<pid>/status, /proc/<pid>/fd);
3. opens IDLE_CONNECTIONS TCP connections, each doing ApiVersions and Metadata for the topic and then
   nothing; measures the broker's CPU over IDLE_WINDOW_S and reads RssAnon again: the difference over
   the count is the memory per idle connection;
4. starts PRODUCERS raw-protocol producers (bench/rawclients.py, PRODUCER_PROCESSES processes of
   asyncio clients, one connection each), each sending one 1 KiB record per request, acks=all, at
   PRODUCER_RATE_PER_S, and a separate probe process sending Metadata (v1, all topics) every
   PROBE_INTERVAL_MS on one connection for PROBE_S, starting PROBE_MARGIN_S after the producers and
   ending before them; RssAnon is sampled every RSS_SAMPLE_S meanwhile;
5. after the load, sends ApiVersions on every idle connection: all of them must still answer.
Nothing is asserted; the report prints each figure beside its target.
"""

import os
import resource
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

import brokermetrics
import procstat
import rawclients
from loadgen import run_group, wait_writable
from stats import percentile
from targets import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "python"))

from chronik_broker import Broker  # noqa: E402
from kafka_helpers import recv_exact  # noqa: E402

IDLE_CONNECTIONS = 1000
PRODUCERS = 200
# 50 asyncio producers per process: four interpreters spread the client work over both cores.
PRODUCER_PROCESSES = 4
PRODUCER_RATE_PER_S = 20
VALUE_BYTES = 1024
TOPIC = "many-clients"
TOPIC_PARTITIONS = 8
PROBE_INTERVAL_MS = 10
PROBE_S = {"full": 60, "quick": 20}
BASELINE_PROBE_S = {"full": 10, "quick": 5}
# The probe starts this long after the producers and ends this long before them.
PROBE_MARGIN_S = 1.0
IDLE_WINDOW_S = 5
RSS_SAMPLE_S = 0.5
SOCKET_TIMEOUT_S = 10.0
CREATE_TIMEOUT_S = 30.0
# Target (issue 15).
METADATA_P99_TARGET_MS = 10.0


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_anon_kib(pid):
    return procstat.status_kib(pid, "RssAnon")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_soft_limit(pid):
    """The broker's own soft RLIMIT_NOFILE (it raises it to the hard limit at start)."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


def _call(sock, frame, correlation):
    sock.sendall(frame)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    return rawclients.check_correlation(recv_exact(sock, size), correlation)


def open_idle(bootstrap, count):
    """`count` connections that did ApiVersions and Metadata for the topic, then stay silent."""
    host, port = bootstrap.rsplit(":", 1)
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _call(s, rawclients.api_versions_request(1), 1)
        _call(s, rawclients.metadata_request(2, TOPIC), 2)
        socks.append(s)
    return socks


def still_answering(socks):
    """How many of the idle connections answer an ApiVersions now."""
    ok = 0
    for s in socks:
        try:
            _call(s, rawclients.api_versions_request(3), 3)
            ok += 1
        except (OSError, RuntimeError):
            pass
    return ok


class RssSampler(threading.Thread):
    """Largest RssAnon and descriptor count of the broker seen while the load runs."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.max_kib = 0
        self.max_fds = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(RSS_SAMPLE_S):
            self.max_kib = max(self.max_kib, rss_anon_kib(self.pid) or 0)
            self.max_fds = max(self.max_fds, open_fds(self.pid))


def latency_summary(samples):
    lat = sorted(samples)
    return {"n": len(lat), "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
            "max_ms": lat[-1] if lat else None}


def probe_spec(bootstrap, seconds, delay):
    return ["probe", "--bootstrap", bootstrap, "--interval-ms", str(PROBE_INTERVAL_MS),
            "--duration", str(seconds), "--delay", str(delay)]


def producer_specs(bootstrap, seconds):
    per = PRODUCERS // PRODUCER_PROCESSES
    return [["producers", "--bootstrap", bootstrap, "--topic", TOPIC, "--partitions", str(TOPIC_PARTITIONS),
             "--count", str(per), "--first", str(i * per), "--total", str(PRODUCERS),
             "--rate", str(PRODUCER_RATE_PER_S), "--size", str(VALUE_BYTES), "--duration", str(seconds)]
            for i in range(PRODUCER_PROCESSES)]


def probe_alone(bootstrap, seconds, log_dir):
    (res,) = run_group([probe_spec(bootstrap, seconds, 0)], seconds, log_dir, worker=rawclients.__file__)
    if res.get("error"):
        raise RuntimeError(res["error"])
    return latency_summary(res["latencies_ms"])


def under_load(pid, bootstrap, admin_addr, probe_s, log_dir):
    """Producers and the probe together; returns the figures of both and of the broker."""
    load_s = probe_s + 2 * PROBE_MARGIN_S
    specs = [probe_spec(bootstrap, probe_s, PROBE_MARGIN_S)] + producer_specs(bootstrap, load_s)
    sampler = RssSampler(pid)
    mark = {}

    def started(start_at):
        mark["cpu0"], mark["t0"] = procstat.cpu_seconds(pid), start_at
        sampler.start()

    before = brokermetrics.snapshot([admin_addr])
    results = run_group(specs, load_s, log_dir, on_started=started, worker=rawclients.__file__)
    sampler.done.set()
    sampler.join()
    after = brokermetrics.snapshot([admin_addr])
    probe, prods = results[0], results[1:]
    wall = max(r.get("t_end", 0) for r in prods) - mark["t0"]
    out = {"probe": latency_summary(probe.get("latencies_ms", [])), "probe_error": probe.get("error"),
           "probe_late_sends": probe.get("late_sends"),
           "produce": latency_summary([x for r in prods for x in r.get("latencies_ms", [])]),
           "produce_sent": sum(r.get("sent", 0) for r in prods),
           "produce_errors": sum(r.get("errors", 0) for r in prods),
           "produce_first_error": next((r.get("first_error") or r.get("error") for r in prods
                                        if r.get("first_error") or r.get("error")), None),
           "load_s": load_s,
           "broker_cores": (procstat.cpu_seconds(pid) - mark["cpu0"]) / wall,
           "clients_cores": sum(r.get("cpu_s", 0) for r in results) / wall,
           "rss_anon_max_kib": sampler.max_kib, "fds_max": sampler.max_fds,
           # The broker's own histograms (request read to response ready): bucket bounds, not values.
           "broker_view": {api: brokermetrics.api_summary(before, after, api) for api in ("Metadata", "Produce")}}
    out["produce_rate"] = out["produce"]["n"] / load_s
    return out


def run(workdir, quick, log):
    key = "quick" if quick else "full"
    res = {"idle_connections": IDLE_CONNECTIONS, "producers": PRODUCERS, "rate_per_producer": PRODUCER_RATE_PER_S,
           "driver_fd_limit": raise_fd_limit(), "load_1m_before": procstat.load_average_1m()}
    Path(workdir).mkdir(parents=True, exist_ok=True)
    log_dir = Path(workdir) / "worker-logs"
    broker = Broker(Path(tempfile.mkdtemp(dir=workdir)), extra_config="")
    broker.start()
    socks = []
    try:
        pid = broker.proc.pid
        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 4})
        admin.create_topics([NewTopic(TOPIC, TOPIC_PARTITIONS, 1)])[TOPIC].result(timeout=CREATE_TIMEOUT_S)
        wait_writable(broker.bootstrap, TOPIC, TOPIC_PARTITIONS, CREATE_TIMEOUT_S)
        res["broker_fd_limit"] = fd_soft_limit(pid)
        res["probe_alone"] = probe_alone(broker.bootstrap, BASELINE_PROBE_S[key], log_dir)
        res.update(rss_before_kib=rss_anon_kib(pid), fds_before=open_fds(pid))
        log(f"many clients: Metadata alone p50/p99 {res['probe_alone']['p50_ms']:.2f}/"
            f"{res['probe_alone']['p99_ms']:.2f} ms; RssAnon {res['rss_before_kib'] / 1024:.1f} MiB, "
            f"{res['fds_before']} fds")
        t = time.monotonic()
        socks = open_idle(broker.bootstrap, IDLE_CONNECTIONS)
        res["idle_open_s"] = time.monotonic() - t
        c0 = procstat.cpu_seconds(pid)
        time.sleep(IDLE_WINDOW_S)
        res["idle_cpu_pct"] = (procstat.cpu_seconds(pid) - c0) / IDLE_WINDOW_S * 100
        res.update(rss_idle_kib=rss_anon_kib(pid), fds_idle=open_fds(pid))
        log(f"many clients: {IDLE_CONNECTIONS} idle connections in {res['idle_open_s']:.1f} s; RssAnon "
            f"{res['rss_idle_kib'] / 1024:.1f} MiB, {res['fds_idle']} fds, idle CPU {res['idle_cpu_pct']:.2f} %")
        res["load"] = under_load(pid, broker.bootstrap, broker.admin_addr, PROBE_S[key], log_dir)
        res.update(rss_after_kib=rss_anon_kib(pid), idle_alive=still_answering(socks))
        load = res["load"]
        log(f"many clients: Metadata under load p50/p99/max {_ms(load['probe'])} ms; produce p50/p99/max "
            f"{_ms(load['produce'])} ms at {load['produce_rate']:,.0f} rec/s, {load['produce_errors']} errors; "
            f"broker {load['broker_cores']:.2f} cores, clients {load['clients_cores']:.2f}; "
            f"broker-side p99: {_broker_p99(load)}; "
            f"{res['idle_alive']} of {IDLE_CONNECTIONS} idle connections answer")
    finally:
        for s in socks:
            s.close()
        broker.stop()
    res["load_1m_after"] = procstat.load_average_1m()
    return res


def _f(v, digits=1):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def _ms(s):
    return "/".join(_f(s[k], 2) for k in ("p50_ms", "p99_ms", "max_ms"))


def _broker_p99(load):
    """'Metadata ≤ 0.25 ms, Produce ≤ 25 ms' from the broker's histograms over the load window."""
    parts = []
    for api, v in load.get("broker_view", {}).items():
        b = v["p99_le_ms"]
        parts.append(f"{api} " + ("n/a" if b is None else "> 5 s" if b == float("inf") else f"≤ {b:g} ms"))
    return ", ".join(parts) or "n/a"


def per_connection_kib(after, before, count):
    if after is None or before is None:
        return None
    return (after - before) / count


def render(r):
    """Markdown lines for the report."""
    load = r.get("load", {})
    idle_kib = per_connection_kib(r.get("rss_idle_kib"), r.get("rss_before_kib"), r["idle_connections"])
    prod_kib = per_connection_kib(load.get("rss_anon_max_kib"), r.get("rss_idle_kib"), r["producers"])
    mib = {k: _f((r.get(k) or 0) / 1024) for k in ("rss_before_kib", "rss_idle_kib", "rss_after_kib")}
    probe, prod = load.get("probe", {}), load.get("produce", {})
    p99 = probe.get("p99_ms")
    met = "" if p99 is None else (" (met)" if p99 <= METADATA_P99_TARGET_MS else " (**not met**)")
    total_rate = r["producers"] * r["rate_per_producer"]
    rows = [
        "",
        f"### Many clients (one node): {r['idle_connections']:,} idle connections, "
        f"{r['producers']} producers",
        "",
        f"Load average {_f(r['load_1m_before'], 2)} before, {_f(r.get('load_1m_after'), 2)} after.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| Metadata probe alone, p50 / p99 / max ({r['probe_alone']['n']} requests) | "
        f"{_ms(r['probe_alone'])} ms | — |",
        f"| open {r['idle_connections']:,} idle connections (ApiVersions + Metadata each) | "
        f"{_f(r.get('idle_open_s'))} s | — |",
        f"| RssAnon before / with idle connections / max under load / after | {mib['rss_before_kib']} / "
        f"{mib['rss_idle_kib']} / {_f(load.get('rss_anon_max_kib', 0) / 1024)} / {mib['rss_after_kib']} MiB | — |",
        f"| memory per idle connection (RssAnon difference / {r['idle_connections']:,}) | {_f(idle_kib)} KiB | documented |",
        f"| memory per producer connection (max under load − idle) / {r['producers']} | {_f(prod_kib)} KiB | — |",
        f"| broker CPU with the idle connections ({IDLE_WINDOW_S} s) | {_f(r.get('idle_cpu_pct'), 2)} % of a core | ~0 |",
        f"| broker descriptors: before / with idle connections / max under load | {r.get('fds_before')} / "
        f"{r.get('fds_idle')} / {load.get('fds_max', 'n/a')} "
        f"(soft limit {r.get('broker_fd_limit')}) | within the limit |",
        f"| **Metadata probe under load**, p50 / p99 / max ({probe.get('n', 0)} requests, every "
        f"{PROBE_INTERVAL_MS} ms, {load.get('probe_late_sends', 'n/a')} sent late) | "
        f"{_ms(probe) if probe else 'n/a'} ms{met} | p99 ≤ {METADATA_P99_TARGET_MS:g} ms |",
        f"| broker-side p99 under load (its histograms, request read to response ready) | {_broker_p99(load)} | — |",
        f"| produce latency, 1 KiB acks=all, p50 / p99 / max ({r['producers']} × {r['rate_per_producer']} rec/s "
        f"= {total_rate:,}/s asked) | {_ms(prod) if prod else 'n/a'} ms at {_f(load.get('produce_rate'), 0)} rec/s; "
        f"{load.get('produce_errors', 'n/a')} errors | — |",
        f"| CPU under load: broker / all clients | {_f(load.get('broker_cores'), 2)} / "
        f"{_f(load.get('clients_cores'), 2)} cores | — |",
        f"| idle connections answering ApiVersions after the load | {r.get('idle_alive', 'n/a')} of "
        f"{r['idle_connections']:,} | all |",
    ]
    if load.get("probe_error") or load.get("produce_first_error"):
        rows += ["", f"Errors: probe {load.get('probe_error')}; producers {load.get('produce_first_error')}"]
    return rows
