"""A small file system of its own for a broker's data dir, so a test can fill it for real: a
loop-mounted ext4 image (no root reserve, so "full" is full for the broker too) or, where that
cannot be made, a tmpfs. Used by test_disk_full.py and the fault campaign's disk-full nemesis."""

import os
import shutil
import subprocess
import time

MOUNT_TIMEOUT_S = 30.0


class MountError(RuntimeError):
    """No small file system could be mounted here (not root, no loop devices, no tmpfs)."""


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=MOUNT_TIMEOUT_S)


def mount_small_fs(mnt, size_bytes, image=None):
    """Mounts a `size_bytes` file system on the existing directory `mnt` (its image, for ext4, at
    `image`, default beside `mnt`); returns its kind ("ext4 (loop)" or "tmpfs")."""
    if os.geteuid() != 0:
        raise MountError("mounting a small file system needs root")
    if shutil.which("mkfs.ext4"):
        img = image or mnt.with_suffix(".img")
        with open(img, "wb") as f:
            f.truncate(size_bytes)
        # -m 0: no blocks reserved for root (the broker runs as root here and would use them).
        if run("mkfs.ext4", "-q", "-m", "0", str(img)).returncode == 0 and \
                run("mount", "-o", "loop", str(img), str(mnt)).returncode == 0:
            return "ext4 (loop)"
    r = run("mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mnt))
    if r.returncode != 0:
        raise MountError(f"cannot mount a small file system here: {r.stderr.strip()}")
    return "tmpfs"


def unmount(mnt):
    for args in (["umount", str(mnt)], ["umount", "-l", str(mnt)]):
        if run(*args).returncode == 0:
            return
        time.sleep(0.5)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path, leave_bytes):
    """Allocate a filler file at `path` so that about `leave_bytes` stay free on its file system."""
    size = max(0, free_bytes(path.parent) - leave_bytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, size)
        os.fsync(fd)
    finally:
        os.close(fd)
