"""Fixtures of the fault campaign: `net_cluster(n)` builds a private network of n+1 namespaces
(faults/netns.py), enters it and starts an n-node cluster on it; everything is stopped by PID and
every namespace deleted at the end, also when the test fails. Skipped, with the reason, on a
machine without root, `ip` or `nft`."""

import contextlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netns import missing_tools, network  # noqa: E402
from netcluster import NetCluster  # noqa: E402


@pytest.fixture
def net_cluster(tmp_path, request):
    missing = missing_tools()
    if missing:
        pytest.skip("the fault campaign needs " + ", ".join(missing))

    @contextlib.contextmanager
    def make(nodes, **settings):
        with network(range(1, nodes + 1)) as net, net.entered():
            c = NetCluster(tmp_path / "cluster", net, nodes=nodes, **settings)
            try:
                c.start()
                yield c, net
            except BaseException:
                print(c.log_tails(), file=sys.stderr)
                raise
            finally:
                c.stop()

    return make

