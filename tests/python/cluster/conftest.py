"""Fixtures of the cluster tests: `cluster` is three chronik-server processes (RF 3, min ISR 2)
under pytest's tmp_path, stopped by PID at teardown; on failure every node's log tail is printed."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chronik_cluster import Cluster  # noqa: E402


@pytest.fixture
def cluster(tmp_path, request):
    c = Cluster(tmp_path / "cluster")
    try:
        c.start()
    except BaseException:
        print(c.log_tails(), file=sys.stderr)
        c.stop()
        raise
    yield c
    failed = getattr(request.node, "rep_call", None)
    c.stop()
    if failed is not None and failed.failed:
        print(c.log_tails(), file=sys.stderr)
