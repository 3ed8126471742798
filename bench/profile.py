"""Profile the broker on the produce path and on the fetch path with `perf`.

Starts a single-node broker, records it with `perf record` (a) while a producer
writes 1 KiB records at acks=all and (b) while a consumer reads that topic from
the start (rdkafka_performance when available, else confluent-kafka processes), then prints the hottest functions of each phase
(self time, `perf report --no-children`) and, from a DWARF call-graph recording,
the chronik functions with the most time including callees.

  .venv/bin/python bench/profile.py [--seconds 10] [--out DIR]

Needs `perf` (Debian: linux-perf) and a kernel that lets it sample
(`perf stat -e instructions true` must work). docs/BENCHMARKS.md has the results.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rdkperf
import run
from targets import SingleNode

FLAT_FREQ_HZ = 1999
# DWARF unwinding copies the stack per sample: keep the rate and the copy small.
DWARF_FREQ_HZ = 199
DWARF_STACK_BYTES = 16384
TOP_LINES = 30
PERF_STOP_TIMEOUT_S = 60


def perf_record(pid, out, dwarf):
    cmd = ["perf", "record", "-q", "-o", str(out), "-p", str(pid)]
    cmd += (["-F", str(DWARF_FREQ_HZ), "--call-graph", f"dwarf,{DWARF_STACK_BYTES}"] if dwarf
            else ["-F", str(FLAT_FREQ_HZ)])
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def perf_stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=PERF_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def report(data, children):
    cmd = ["perf", "report", "-i", str(data), "--stdio", "--percent-limit", "0.5",
           "--sort", "dso,symbol" if not children else "symbol"]
    cmd += ["--children", "-g", "none"] if children else ["--no-children"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in res.stdout.splitlines() if line.strip() and not line.startswith("#")]
    return lines


def phase(name, target, action, out_dir):
    pid = target.pids[0]
    flat_data, dwarf_data = out_dir / f"{name}.flat.data", out_dir / f"{name}.dwarf.data"
    flat, dwarf = perf_record(pid, flat_data, False), perf_record(pid, dwarf_data, True)
    time.sleep(0.5)  # let perf attach to every thread before the load begins
    try:
        action()
    finally:
        perf_stop(flat)
        perf_stop(dwarf)
    print(f"\n==== {name}: self time, top functions (perf report --no-children) ====")
    flat_lines = report(flat_data, children=False)
    print("\n".join(flat_lines[:TOP_LINES]))
    print(f"\n==== {name}: chronik functions, time including callees (DWARF call graphs) ====")
    child_lines = [line for line in report(dwarf_data, children=True) if "chronik" in line]
    print("\n".join(child_lines[:TOP_LINES]))
    (out_dir / f"{name}.flat.txt").write_text("\n".join(flat_lines) + "\n")
    (out_dir / f"{name}.children.txt").write_text("\n".join(child_lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description="perf profile of the produce and fetch paths")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the produce load")
    ap.add_argument("--producers", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--python", action="store_true",
                    help="drive with confluent-kafka processes even when rdkafka_performance is available")
    ap.add_argument("--out", help="directory for perf.data and reports (default: a temp dir, kept)")
    args = ap.parse_args()
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="chronik-profile-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = run.Mode(True, 1, args.producers, args.partitions)
    mode.produce_s = args.seconds
    if not args.python:
        mode.rdkperf, how = rdkperf.find_or_build()
        print(f"load generator: {mode.rdkperf or 'confluent-kafka processes'} ({how})", file=sys.stderr)
    target = SingleNode(out_dir / "broker", args.partitions)
    target.start()
    produced = {}
    try:
        def produce():
            if mode.rdkperf:
                produced.update(run.measure_produce_c(target, mode, 1024, "all", 0, run.C_RATE_GUESS[1024]))
            else:
                produced.update(run.measure_produce(target, mode, 1024, "all", 0, out_dir / "logs"))

        def consume():
            if mode.rdkperf:
                run.measure_consume_c(target, mode, produced["topic"], 0)
            else:
                run.measure_consume(target, mode, produced["topic"], 0, out_dir / "logs")

        phase("produce", target, produce, out_dir)
        phase("fetch", target, consume, out_dir)
    finally:
        target.stop()
    print(f"\nperf data and reports in {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent)
    main()
