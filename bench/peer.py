"""Side by side with a peer broker (docs/BENCHMARKS.md, issue 15 item 6): Chronik and Tansu, a
Kafka-compatible broker in Rust, in the same run, loaded by the same client, and Chronik / Tansu ratios.

Tansu is not installed by the benchmark: the opt-in install command is in docs/BENCHMARKS.md. Its
binary is taken from $TANSU_BIN, else `tansu` on PATH, else INSTALL_ROOT/bin/tansu (the documented
`cargo install --root`). Without it the rows say n/a and why.

Both brokers run at the same time on free loopback ports: a fresh Chronik single node (`fsync =
"always"`, RF 1) and Tansu on its in-memory storage engine (`--storage-engine memory://tansu/`, nothing
written to disk). Every measurement is run.py's own (the caller passes its functions in): the same
confluent-kafka producer and consumer processes (bench/workers.py) with the same settings, the same
topic layout (mode.partitions partitions, created with CreateTopics on each broker), the same
durations. Repeats alternate which broker goes first, so a change in the shared machine's load falls on
both. Produce runs: 100 B and 1 KiB records, acks=1 and acks=all on both brokers. Consume: from the start
of the largest 1 KiB topic each broker kept, the same number of records on both, with librdkafka's
default fetch.wait.max.ms and with 10 ms (see CONSUME_FETCH_WAITS_MS). A measurement that
fails on one broker marks its cell, not the whole group.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

import procstat
from stats import Repeated
from targets import SingleNode
from chronik_broker import free_ports, terminate  # noqa: E402 (targets puts the harness on sys.path)

# The documented install root (`cargo install tansu ... --root <this>`); see docs/BENCHMARKS.md.
INSTALL_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "chronik-bench" / "tansu"
TANSU_VERSION = "0.6.0"
INSTALL_HINT = "see docs/BENCHMARKS.md for the opt-in install command"
STORAGE_ENGINE = "memory://tansu/"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.2
METADATA_TIMEOUT_S = 5.0
LOG_TAIL_CHARS = 2000
RECORD_SIZES_BYTES = (100, 1024)
ACKS = ("1", "all")
CONSUME_RECORD_BYTES = 1024
# Consume rows: librdkafka's default fetch.wait.max.ms (None: 500 ms, what a user gets), then a short one.
# Tansu 0.6.0 sleeps after every fetch pass, data or not (tansu-storage service/fetch.rs: half the
# remaining max wait, or all of it below 250 ms) and returns at most 5 MiB a response, so with the default
# a consumer gets about 5 MiB per 250 ms from it; the second row shows the brokers without that pacing.
CONSUME_FETCH_WAITS_MS = {"consume": None, "consume_wait10": 10}


def find_tansu():
    """(path or None, how it was found or why it is missing)."""
    env = os.environ.get("TANSU_BIN")
    if env:
        return (env, "$TANSU_BIN") if os.access(env, os.X_OK) else (None, f"$TANSU_BIN={env} is not executable")
    on_path = shutil.which("tansu")
    if on_path:
        return on_path, "on PATH"
    installed = INSTALL_ROOT / "bin" / "tansu"
    if os.access(installed, os.X_OK):
        return str(installed), str(installed)
    return None, f"tansu not installed ({INSTALL_HINT})"


def tansu_version(binary):
    try:
        res = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        return res.stdout.strip() or res.stderr.strip() or "?"
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"? ({e})"


class TansuUnavailable(RuntimeError):
    """Tansu was found but did not start or answer; says why."""


class TansuBroker:
    """One Tansu process on its in-memory engine, shaped like targets.SingleNode for run.py's measures."""

    label = "Tansu"
    replication = 1
    admin_addrs = ()  # no Chronik admin API; only the latency rows read it

    def __init__(self, binary, workdir):
        self.binary = binary
        self.workdir = Path(workdir)
        self.port = free_ports(1)[0]
        self.log_path = self.workdir / "tansu.log"
        self.proc = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    @property
    def pids(self):
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", STORAGE_ENGINE]
        with open(self.log_path, "ab") as log:
            # No colour codes in the log; RUST_LOG=warn keeps it to problems.
            env = {**os.environ, "NO_COLOR": "1", "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        deadline = time.monotonic() + START_TIMEOUT_S
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                last_line = (self.log_tail().strip().splitlines() or ["no output"])[-1]
                raise TansuUnavailable(f"tansu exited ({self.proc.returncode}) at start: {last_line} "
                                       f"(log: {self.log_path})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
                admin.list_topics(timeout=METADATA_TIMEOUT_S)
                return
            except Exception as e:  # not listening yet, or Metadata not answered yet
                last = e
                time.sleep(POLL_S)
        self.stop()
        raise TansuUnavailable(f"tansu did not answer Metadata within {START_TIMEOUT_S:.0f}s ({last})")

    def stop(self):
        """SIGTERM by PID, SIGKILL if it does not exit within STOP_TIMEOUT_S."""
        if self.proc is not None:
            terminate(self.proc, STOP_TIMEOUT_S)

    def log_tail(self):
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return "(no tansu log)"


def _attempt(fn, log, who):
    """fn()'s result, or {"error": ...} when the measurement failed on this broker."""
    try:
        return fn()
    except Exception as e:  # LoadError, KafkaException…: one broker failing a run must not end the comparison
        log(f"peer: {who}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return {"error": str(e).splitlines()[0] if str(e) else type(e).__name__}


def _compare(brokers, mode, log, produce, consume, delete, log_dir):
    """Measurements on both brokers, repeats interleaved; {name: {label: [runs]}}."""
    res = {"produce": {}, "consume": {}}
    keep = {b.label: None for b in brokers}  # the largest 1 KiB topic so far: the consume runs read it
    for size in RECORD_SIZES_BYTES:
        for acks in ACKS:
            runs = {b.label: [] for b in brokers}
            for rep in range(mode.repeats):
                order = brokers if rep % 2 == 0 else list(reversed(brokers))
                for b in order:
                    out = _attempt(lambda: produce(b, mode, size, acks, rep, log_dir), log, f"{b.label} produce")
                    runs[b.label].append(out)
                    if "error" in out:
                        continue
                    if size == CONSUME_RECORD_BYTES and (keep[b.label] is None
                                                         or out["records"] > keep[b.label]["records"]):
                        if keep[b.label] is not None:
                            delete(b, keep[b.label]["topic"])
                        keep[b.label] = out
                    else:
                        delete(b, out["topic"])
            res["produce"][f"{size}/{acks}"] = runs
    # Read the same number of records from both: the smaller of the two kept topics.
    kept = [k for k in keep.values() if k is not None]
    limit = min(k["records"] for k in kept) if len(kept) == len(brokers) else None
    for key, wait_ms in CONSUME_FETCH_WAITS_MS.items():
        res[key] = {b.label: [] for b in brokers}
        for rep in range(mode.repeats):
            order = brokers if rep % 2 == 0 else list(reversed(brokers))
            for b in order:
                if keep[b.label] is None:
                    res[key][b.label].append({"error": "no 1 KiB topic was produced"})
                    continue
                topic = keep[b.label]["topic"]
                res[key][b.label].append(_attempt(
                    lambda: consume(b, mode, topic, rep, log_dir, limit=limit, fetch_wait_ms=wait_ms),
                    log, f"{b.label} consume"))
    for b in brokers:
        if keep[b.label] is not None:
            delete(b, keep[b.label]["topic"])
    return res


def run(workdir, mode, log_dir, log, produce, consume, delete):
    """The peer group: {"tansu": path or None, "why": ..., figures}. `produce`, `consume` and `delete`
    are run.py's measure_produce, measure_consume and delete_topic."""
    binary, how = find_tansu()
    res = {"tansu": binary, "how": how, "load_1m_before": procstat.load_average_1m(),
           "partitions": mode.partitions, "repeats": mode.repeats}
    if binary is None:
        log(f"peer: {how}")
        return res
    res["version"] = tansu_version(binary)
    chronik = SingleNode(Path(workdir) / "chronik", mode.partitions)
    chronik.label = "Chronik"
    tansu = TansuBroker(binary, Path(workdir) / "tansu")
    log(f"peer: Chronik and {res['version']} ({binary}, {STORAGE_ENGINE}) side by side")
    try:
        chronik.start()
        try:
            tansu.start()
        except TansuUnavailable as e:
            res["unavailable"] = str(e).splitlines()[0]
            log(f"peer: {e}")
            return res
        res.update(_compare([chronik, tansu], mode, log, produce, consume, delete, log_dir))
        res["peak_rss_mib"] = {b.label: procstat.peak_rss_mib(b.pids[0]) if b.pids else None
                               for b in (chronik, tansu)}
    finally:
        tansu.stop()
        chronik.stop()
        res["load_1m_after"] = procstat.load_average_1m()
    return res


# ---- report -------------------------------------------------------------------

def _f(v, digits=1):
    if v is None:
        return "—"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}f}"


def _cell(runs, key, unit):
    """'123.4 MB/s (±3%, broker 0.52 cores)' from the runs without an error; or the first error."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return None, f"failed: {runs[0]['error']}" if runs else "—"
    rep = Repeated(r[key] for r in ok)
    spread = rep.spread_pct()
    cores = Repeated(r["broker_cores"] for r in ok).median
    note = f"±{spread / 2:.0f}%" if spread is not None else ""
    note += f", broker {cores:.2f} cores" if cores is not None else ""
    failed = len(runs) - len(ok)
    note += f", {failed} of {len(runs)} runs failed" if failed else ""
    return rep.median, f"{_f(rep.median)} {unit} ({note.lstrip(', ')})"


def _ratio(a, b):
    return "—" if a is None or not b else f"{a / b:.2f}"


def render(r):
    """Markdown lines for the report."""
    out = ["", "### Side by side with a peer: Chronik / Tansu (same client, one run)", ""]
    measurements = [f"produce {s} B, acks={a}" for s in RECORD_SIZES_BYTES for a in ACKS]
    measurements += ["consume from start, 1 KiB records (fetch.wait.max.ms default, 500)",
                     "consume from start, 1 KiB records, fetch.wait.max.ms=10"]
    if r.get("tansu") is None or r.get("unavailable"):
        why = r.get("unavailable") or r["how"]
        out += ["| measurement | Chronik | Tansu | Chronik / Tansu |", "|---|---|---|---|"]
        out += [f"| {m} | n/a — {why} | n/a | n/a |" for m in measurements]
        return out
    out += [f"{r['version']} ({r['tansu']}) on its in-memory engine ({STORAGE_ENGINE}, nothing on disk) beside "
            f"a Chronik single node (fsync = always, RF 1): not a like-for-like durability comparison. "
            f"Same confluent-kafka processes for both, {r['partitions']} partitions, {r['repeats']} runs each, "
            f"interleaved. Load average {_f(r['load_1m_before'], 2)} before, {_f(r.get('load_1m_after'), 2)} after.",
            "", "| measurement | Chronik (median, spread, broker CPU) | Tansu | Chronik / Tansu (MB/s) |",
            "|---|---|---|---|"]
    rows = [(f"produce {k.split('/')[0]} B, acks={k.split('/')[1]}", v) for k, v in r["produce"].items()]
    rows.append(("consume from start, 1 KiB records (fetch.wait.max.ms default, 500)", r["consume"]))
    if "consume_wait10" in r:
        rows.append(("consume from start, 1 KiB records, fetch.wait.max.ms=10", r["consume_wait10"]))
    for name, runs in rows:
        c_mb, c_txt = _cell(runs.get("Chronik", []), "mb_s", "MB/s")
        t_mb, t_txt = _cell(runs.get("Tansu", []), "mb_s", "MB/s")
        c_rec, _ = _cell(runs.get("Chronik", []), "rec_s", "rec/s")
        t_rec, _ = _cell(runs.get("Tansu", []), "rec_s", "rec/s")
        c_txt += f"; {_f(c_rec)} rec/s" if c_rec is not None else ""
        t_txt += f"; {_f(t_rec)} rec/s" if t_rec is not None else ""
        out.append(f"| {name} | {c_txt} | {t_txt} | **{_ratio(c_mb, t_mb)}** |")
    rss = r.get("peak_rss_mib", {})
    out.append(f"| broker peak RSS (VmHWM) after all runs | {_f(rss.get('Chronik'))} MiB | "
               f"{_f(rss.get('Tansu'))} MiB (holds every record in memory) | — |")
    return out
