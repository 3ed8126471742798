"""Fixtures of the cluster tests: `cluster` is three chronik-server processes (RF 3, min ISR 2)
under pytest's tmp_path, stopped by PID at teardown; on failure every node's log tail is printed."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chronik_cluster import started_cluster  # noqa: E402


@pytest.fixture
def cluster(tmp_path, request):
    with started_cluster(tmp_path / "cluster", request) as c:
        yield c
