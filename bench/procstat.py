"""Readings of a process from /proc: CPU seconds (utime + stime), peak RSS (VmHWM) and bytes written.

Used on the broker's PID around each measurement so the report can give CPU
seconds per GB written and the resident-memory high-water mark.
"""

import os

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# Fields of /proc/<pid>/stat after the ")" that closes the command name:
# index 11 is utime, 12 is stime (fields 14 and 15 in proc(5), counted from 1).
STAT_UTIME_INDEX = 11
STAT_STIME_INDEX = 12


def cpu_seconds(pid):
    """User + system CPU seconds the process has used so far."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read().decode()
    # The command name may contain spaces or parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2:].split()
    ticks = int(fields[STAT_UTIME_INDEX]) + int(fields[STAT_STIME_INDEX])
    return ticks / CLOCK_TICKS_PER_S


def status_kib(pid, key):
    """A `kB` figure of /proc/<pid>/status (VmHWM, VmRSS), in KiB; None if absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def peak_rss_mib(pid):
    kib = status_kib(pid, "VmHWM")
    return None if kib is None else kib / 1024.0


def write_bytes(pid):
    """Bytes the process has caused to be written to storage so far (`write_bytes` of /proc/<pid>/io:
    counted a page at a time when it dirties a clean page-cache page, so a page appended to again after
    its fsync counts again); None when the kernel keeps no I/O accounting."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def load_average_1m():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])
