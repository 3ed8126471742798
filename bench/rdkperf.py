"""Optional C load generator: librdkafka's own `rdkafka_performance` example.

The Python generator (workers.py) spends more CPU per record than the broker
does, so on a small machine it measures the client. When `rdkafka_performance`
is available the benchmark adds produce and consume rows driven by it: one C
process, no per-record Python work. It is found at $RDKAFKA_PERFORMANCE, or at
.cache/bench/rdkafka_performance, or compiled there from a librdkafka source tree
under .cache/librdkafka/ whose static library is already built (the librdkafka
test-suite runner builds one). Nothing is downloaded; without it the rows say n/a.
"""

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHED_BINARY = REPO_ROOT / ".cache" / "bench" / "rdkafka_performance"
SOURCE_GLOB = str(REPO_ROOT / ".cache" / "librdkafka" / "*" / "examples" / "rdkafka_performance.c")
LINK_LIBS = ["-llz4", "-lzstd", "-lsasl2", "-lssl", "-lcrypto", "-lz", "-lm", "-ldl", "-lpthread", "-lrt"]
COMPILE_TIMEOUT_S = 120
# Beyond its expected length a run is stuck.
RUN_TIMEOUT_EXTRA_S = 120

PRODUCED = re.compile(r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered "
                      r"\(offset \d+, (\d+) failed\) in (\d+)ms")
CONSUMED = re.compile(r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms")


class RdkPerfError(RuntimeError):
    """rdkafka_performance failed or printed no final figures."""


def find_or_build():
    """(path or None, how it was found or why it is missing)."""
    env = os.environ.get("RDKAFKA_PERFORMANCE")
    if env:
        return (env, "$RDKAFKA_PERFORMANCE") if os.access(env, os.X_OK) else (None, f"{env} not executable")
    if os.access(CACHED_BINARY, os.X_OK):
        return str(CACHED_BINARY), str(CACHED_BINARY.relative_to(REPO_ROOT))
    cc = shutil.which("cc") or shutil.which("gcc")
    for src in sorted(glob.glob(SOURCE_GLOB)):
        tree = Path(src).parents[1]
        lib = tree / "src" / "librdkafka-static.a"
        if not lib.is_file() or cc is None:
            continue
        CACHED_BINARY.parent.mkdir(parents=True, exist_ok=True)
        res = subprocess.run([cc, "-O2", f"-I{tree / 'src'}", src, "-o", str(CACHED_BINARY), str(lib),
                              *LINK_LIBS], capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
        if res.returncode == 0:
            return str(CACHED_BINARY), f"compiled from {tree.relative_to(REPO_ROOT)}"
        return None, f"compiling {src} failed: {res.stderr.strip()[-300:]}"
    return None, "rdkafka_performance not built (no librdkafka build under .cache/librdkafka)"


def produce(binary, bootstrap, topic, size, acks, count, timeout_s):
    """Produce `count` records of `size` bytes; (delivered, failed, seconds)."""
    cmd = [binary, "-P", "-t", topic, "-b", bootstrap, "-s", str(size),
           "-a", "-1" if acks == "all" else acks, "-c", str(count), "-q",
           "-X", "linger.ms=5", "-X", "batch.size=1000000", "-X", "compression.type=none"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + RUN_TIMEOUT_EXTRA_S)
    found = PRODUCED.findall(res.stdout + res.stderr)
    if res.returncode != 0 or not found:
        raise RdkPerfError(f"rdkafka_performance -P exited {res.returncode}: {res.stderr.strip()[-300:]}")
    _produced, _bytes, delivered, failed, ms = (int(x) for x in found[-1])
    return delivered, failed, ms / 1000.0


def consume(binary, bootstrap, topic, partitions, count, timeout_s):
    """Read `count` records from the start of `partitions`; (records, bytes, seconds)."""
    cmd = [binary, "-C", "-t", topic, "-b", bootstrap, "-o", "beginning", "-c", str(count), "-q",
           "-X", "fetch.queue.backoff.ms=10"]
    for p in partitions:
        cmd += ["-p", str(p)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + RUN_TIMEOUT_EXTRA_S)
    found = CONSUMED.findall(res.stdout + res.stderr)
    if res.returncode != 0 or not found:
        raise RdkPerfError(f"rdkafka_performance -C exited {res.returncode}: {res.stderr.strip()[-300:]}")
    records, nbytes, ms = (int(x) for x in found[-1])
    return records, nbytes, ms / 1000.0


def latency(binary, bootstrap, topic, size, rate, count, workdir, timeout_s):
    """Produce `count` records of `size` bytes at acks=all, rate-limited to `rate` records/s
    (`-r`), and return (per-message latencies in ms, seconds). `-l` makes rdkafka_performance put
    its wall clock in each payload and compute produce() → delivery report latency per message;
    `-A` writes them (µs, one per line). The first LATENCY_WARMUP_FRACTION are dropped (connection
    set-up, metadata). `-r` sleeps between messages by polling, which above 1,000 records/s busy-polls
    one core: on a 2-core machine the generator takes a core from the broker, so these figures are
    an upper bound for the broker's latency."""
    lat_file = Path(workdir) / f"{topic}.latency"
    cmd = [binary, "-P", "-t", topic, "-b", bootstrap, "-s", str(size), "-a", "-1", "-c", str(count), "-q",
           "-r", str(int(rate)), "-l", "-A", str(lat_file),
           "-X", f"linger.ms={LATENCY_LINGER_MS}", "-X", "batch.size=1000000", "-X", "compression.type=none"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + RUN_TIMEOUT_EXTRA_S)
    found = PRODUCED.findall(res.stdout + res.stderr)
    if res.returncode != 0 or not found or not lat_file.exists():
        raise RdkPerfError(f"rdkafka_performance -P -r exited {res.returncode}: {res.stderr.strip()[-300:]}")
    _produced, _bytes, _delivered, failed, ms = (int(x) for x in found[-1])
    samples = [int(x) / 1000.0 for x in lat_file.read_text().split()]
    lat_file.unlink()
    if failed:
        raise RdkPerfError(f"rdkafka_performance -P -r: {failed} deliveries failed")
    return samples[int(len(samples) * LATENCY_WARMUP_FRACTION):], ms / 1000.0


# Latency runs: the Python latency rows use linger.ms=1 too.
LATENCY_LINGER_MS = 1
LATENCY_WARMUP_FRACTION = 0.1
