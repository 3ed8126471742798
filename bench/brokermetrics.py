"""The brokers' own view of a latency run, from their Prometheus /metrics.

Each broker keeps two histograms that tell where a produce's time goes:
`chronik_request_latency_seconds{api="Produce"}` (from reading the request to the
response being ready, fsync and replication waits included) and
`chronik_log_fsync_seconds` (every group-commit fdatasync). A run reads them
before and after, sums the difference over the target's brokers, and reports the
bucket bound that a quantile falls under ("p99 <= 2.5 ms"): a histogram gives
bounds, not exact values. With the client's own latencies beside them the row
says whether the time went in the broker, in its fsyncs, or outside the broker
(client queueing, scheduling on a loaded machine). The produce time is also split by
stage (`chronik_produce_stage_seconds`: append, durable, replicated, written — see
chronik-server/src/metrics.rs), so a slow broker-side answer names the stage it was slow in.
"""

import re
import urllib.error
import urllib.request

METRICS_TIMEOUT_S = 2.0
# name{labels,le="0.001"} 123
BUCKET = re.compile(r'^(\w+)_bucket\{(.*?)le="([^"]+)"\} (\d+)$')
PRODUCE = ("chronik_request_latency_seconds", 'api="Produce",')
FSYNC = ("chronik_log_fsync_seconds", "")
STAGES = ("append", "durable", "replicated", "written")


def scrape(admin_addr):
    """{(name, labels): {le: cumulative count}} of every histogram the broker renders; {} if unreachable."""
    try:
        with urllib.request.urlopen(f"http://{admin_addr}/metrics", timeout=METRICS_TIMEOUT_S) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    out = {}
    for line in text.splitlines():
        m = BUCKET.match(line)
        if m:
            name, labels, le, count = m.groups()
            out.setdefault((name, labels), {})[le] = int(count)
    return out


def snapshot(admin_addrs):
    return [scrape(a) for a in admin_addrs]


def _delta(before, after, key):
    """Bucket counts of `key` added between two snapshots, summed over brokers: {le: count}."""
    total = {}
    for b, a in zip(before, after):
        for le, count in a.get(key, {}).items():
            total[le] = total.get(le, 0) + count - b.get(key, {}).get(le, 0)
    return total


def quantile_bound_ms(buckets, q):
    """The smallest bucket bound (ms) under which a fraction `q` of the samples falls; None if no
    samples, inf if it falls in the +Inf bucket."""
    n = buckets.get("+Inf", 0)
    if n <= 0:
        return None
    for le, count in sorted((float(k), c) for k, c in buckets.items() if k != "+Inf"):
        if count >= q * n:
            return le * 1000.0
    return float("inf")


def summary(before, after):
    """{'produce': {...}, 'fsync': {...}} with count, p50 and p99 bounds (ms) over the run."""
    out = {}
    keys = [("produce", PRODUCE), ("fsync", FSYNC)]
    keys += [(f"stage_{st}", ("chronik_produce_stage_seconds", f'stage="{st}",')) for st in STAGES]
    for name, key in keys:
        buckets = _delta(before, after, key)
        out[name] = {"count": buckets.get("+Inf", 0),
                     "p50_le_ms": quantile_bound_ms(buckets, 0.50),
                     "p99_le_ms": quantile_bound_ms(buckets, 0.99)}
    return out


def api_summary(before, after, api):
    """Count and p50 / p99 bounds (ms) of one API's request latency histogram between two snapshots."""
    buckets = _delta(before, after, ("chronik_request_latency_seconds", f'api="{api}",'))
    return {"count": buckets.get("+Inf", 0), "p50_le_ms": quantile_bound_ms(buckets, 0.50),
            "p99_le_ms": quantile_bound_ms(buckets, 0.99)}


def describe(s):
    """'broker: produce p50 ≤ 1 ms, p99 ≤ 2.5 ms (7,300 requests); fsync p50 ≤ 0.5 ms, p99 ≤ 1 ms (7,290 fsyncs)'."""
    if not s or not s["produce"]["count"]:
        return "broker-side figures unavailable"
    p, f = s["produce"], s["fsync"]

    def ms(v):
        return "n/a" if v is None else ("> 1 s" if v == float("inf") else f"≤ {v:g} ms")
    text = f"broker: produce p50 {ms(p['p50_le_ms'])}, p99 {ms(p['p99_le_ms'])} ({p['count']:,} requests)"
    if f["count"]:
        text += f"; fsync p50 {ms(f['p50_le_ms'])}, p99 {ms(f['p99_le_ms'])} ({f['count']:,} fsyncs)"
    stages = [(st, s.get(f"stage_{st}")) for st in STAGES]
    stages = [f"{st} {ms(v['p99_le_ms'])}" for st, v in stages if v and v["count"]]
    if stages:
        text += "; p99 by stage: " + ", ".join(stages)
    return text
