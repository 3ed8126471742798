"""Run kafka-python 3.0.12's own integration tests against a three-node cluster (issue 3).

Same suite, shims, deselections and client-race retries as
tests/kafka-python-suite/run.py (which runs it against one broker); here the
brokers are nodes 0, 1 and 2 of a cluster with replication factor 3 by default,
and KAFKA_URI names node 0 (the suite bootstraps from one address and discovers
the others through Metadata). min ISR is 1 here, as the suite's own broker has it.

Usage: .venv/bin/python tests/python/cluster/kafka_python_suite.py [extra pytest args...]
Exit status is pytest's.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "kafka-python-suite"))

import run as suite  # noqa: E402  (tests/kafka-python-suite/run.py)
from chronik_cluster import Cluster  # noqa: E402


def main(extra):
    unpacked = suite.fetch_sdist()
    suite.install_shims(unpacked)
    workdir = Path(tempfile.mkdtemp(prefix="chronik-kp-cluster-"))
    kafka_root = workdir / "kafka-root"
    kafka_root.mkdir()
    # The suite's broker settings (see run.py); node ids from 0 because test_create_partitions
    # expects broker 0 to exist. The suite creates its topics with replication factor 1 and produces
    # with acks=all, which needs Kafka's default min.insync.replicas of 1 (with 2, every such produce
    # is NOT_ENOUGH_REPLICAS, retried until the test times out).
    cluster = Cluster(workdir / "cluster", first_id=0, num_partitions=suite.SUITE_NUM_PARTITIONS,
                      min_insync_replicas=1,
                      group_session_timeout_ms_min=suite.SUITE_SESSION_TIMEOUT_MS_MIN)
    try:
        cluster.start()
    except BaseException as e:  # noqa: BLE001 — report any start failure with the logs
        print(f"kafka-python suite on a cluster: did not start: {e}\n{cluster.log_tails()}", file=sys.stderr)
        cluster.stop()
        return 2
    first = cluster.nodes[0]
    print(f"kafka-python suite: 3-node cluster, KAFKA_URI={first.bootstrap}", flush=True)
    env = dict(os.environ)
    env.update({"KAFKA_URI": f"tcp://{first.bootstrap}", "KAFKA_VERSION": suite.KAFKA_VERSION,
                "KAFKA_ROOT": str(kafka_root)})
    env.pop("ZOOKEEPER_URI", None)
    try:
        rc = suite.run_pytest(unpacked, env, extra)
    finally:
        dead = [i for i, n in cluster.nodes.items() if not n.is_running()]
        cluster.stop()
    if dead:
        print(f"kafka-python suite: nodes {dead} died during the run\n{cluster.log_tails()}", file=sys.stderr)
        rc = rc or 3
    if rc != 0:
        print(f"kafka-python suite on a cluster: failed (exit {rc}); logs kept under {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
