"""Fixtures for the Chronik Python harness.

`broker` starts a fresh chronik-server for each test (its own ports, config and
data dir under pytest's tmp_path) and stops it by PID at teardown; the test can
call `broker.restart_after_crash()` to kill -9 it and start it again on the
same data dir and ports. On failure the broker's log tail is printed.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chronik_broker import Broker  # noqa: E402


@pytest.fixture
def broker(tmp_path, request):
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    failed = getattr(request.node, "rep_call", None)
    b.stop()
    if failed is not None and failed.failed:
        print(b.log_tail(), file=sys.stderr)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep the call-phase report on the item so the fixture can show the log on failure.
    rep = yield
    if rep.when == "call":
        item.rep_call = rep
    return rep
