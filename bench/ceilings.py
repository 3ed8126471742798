"""What this machine allows, measured in the same run as the broker figures.

- loopback TCP bandwidth: iperf3 (Debian package) when installed, otherwise a
  Python sender/receiver pair moving 1 MiB buffers over 127.0.0.1;
- sequential write bandwidth with an fsync after every MiB, in the directory the
  broker's data lives in (same filesystem, same device);
- fsync latency: p50/p99 of a 4 KiB write followed by fdatasync, same directory;
  again with three writers at once, one file each (what three nodes on one disk do for
  every acks=all batch).

Every broker figure is later printed as a fraction of the ceiling it is bound by.
"""

import json
import os
import shutil
import socket
import subprocess
import threading
import time

from stats import percentile

MIB = 1024 * 1024
FSYNC_BLOCK_BYTES = 4096
LOOPBACK_BUFFER_BYTES = MIB
IPERF_PORT_RETRIES = 3
IPERF_SERVER_START_S = 0.5
IPERF_TIMEOUT_EXTRA_S = 20


class CeilingError(RuntimeError):
    """A ceiling could not be measured (tool failed, timed out, bad output)."""


# ---- loopback TCP -----------------------------------------------------------

def loopback_mb_s(duration_s, port):
    """Loopback TCP bandwidth in MB/s (10^6 bytes) and the tool that measured it."""
    if shutil.which("iperf3"):
        return _iperf3_mb_s(duration_s, port), "iperf3"
    return _python_loopback_mb_s(duration_s), "python socket pair"


def _iperf3_mb_s(duration_s, port):
    server = subprocess.Popen(
        ["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(IPERF_SERVER_START_S)
        out = None
        for _ in range(IPERF_PORT_RETRIES):
            res = subprocess.run(
                ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(duration_s), "-J"],
                capture_output=True, text=True, timeout=duration_s + IPERF_TIMEOUT_EXTRA_S)
            if res.returncode == 0:
                out = res.stdout
                break
            time.sleep(IPERF_SERVER_START_S)
        if out is None:
            raise CeilingError(f"iperf3 client failed on port {port}: {res.stderr.strip()[:200]}")
        report = json.loads(out)
        bits_per_s = report["end"]["sum_received"]["bits_per_second"]
        return bits_per_s / 8 / 1e6
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(timeout=10)


def _python_loopback_mb_s(duration_s):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received = [0]

    def receive():
        conn, _ = listener.accept()
        with conn:
            buf = bytearray(LOOPBACK_BUFFER_BYTES)
            while True:
                n = conn.recv_into(buf)
                if n == 0:
                    return
                received[0] += n

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    payload = b"\0" * LOOPBACK_BUFFER_BYTES
    with socket.create_connection(listener.getsockname()) as s:
        start = time.monotonic()
        while time.monotonic() - start < duration_s:
            s.sendall(payload)
    t.join(timeout=10)
    elapsed = time.monotonic() - start
    listener.close()
    return received[0] / elapsed / 1e6


# ---- disk -------------------------------------------------------------------

def sequential_fsync_mb_s(directory, total_bytes):
    """Write `total_bytes` sequentially in 1 MiB writes, fsync after each; MB/s."""
    path = os.path.join(directory, "ceiling-seqwrite.tmp")
    block = os.urandom(MIB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        start = time.monotonic()
        written = 0
        while written < total_bytes:
            written += os.write(fd, block)
            os.fsync(fd)
        elapsed = time.monotonic() - start
    finally:
        os.close(fd)
        os.unlink(path)
    return written / elapsed / 1e6


def fsync_latency_ms(directory, count, writers=1):
    """(p50, p99) in ms of a 4 KiB append followed by fdatasync, `count` times per writer; with
    `writers` > 1 that many threads do it at once, each on a file of its own (os.write and
    os.fdatasync release the GIL), and the percentiles are over all their samples."""
    samples = []
    lock = threading.Lock()

    def write(i):
        path = os.path.join(directory, f"ceiling-fsync-{i}.tmp")
        block = os.urandom(FSYNC_BLOCK_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        mine = []
        try:
            for _ in range(count):
                t0 = time.perf_counter()
                os.write(fd, block)
                os.fdatasync(fd)
                mine.append((time.perf_counter() - t0) * 1e3)
        finally:
            os.close(fd)
            os.unlink(path)
            with lock:
                samples.extend(mine)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    samples.sort()
    return percentile(samples, 50), percentile(samples, 99)
