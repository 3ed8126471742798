"""Run kafka-python 3.0.12's own integration tests against a chronik-server.

Steps: fetch the kafka-python sdist into .cache/ (pip download, once), unpack its
test/ tree, add the two files the sdist lacks (test/__init__.py, test/service.py,
kept beside this script), start a chronik-server on free ports in a temp dir,
run pytest on test/integration with KAFKA_URI/KAFKA_VERSION/KAFKA_ROOT set and
the tests in deselected.txt deselected, then stop the broker by PID.

Usage: .venv/bin/python tests/kafka-python-suite/run.py [extra pytest args...]
Exit status is pytest's.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "python"))

from chronik_broker import Broker, BrokerError  # noqa: E402

KAFKA_PYTHON_VERSION = "3.0.12"
# kafka-python infers the broker version from ApiVersions (kafka/protocol/
# broker_version_data.py: infer_broker_version_from_api_versions): the newest
# test that matches wins. Chronik advertises ListOffsets 1-7 and Fetch 4-12, so
# "(3, 0): ListOffsets v7" is the first match (3.1 needs Fetch 13, 3.2 JoinGroup 9).
KAFKA_VERSION = "3.0"
CACHE_DIR = REPO_ROOT / ".cache" / "kafka-python-suite"
SDIST_NAME = f"kafka_python-{KAFKA_PYTHON_VERSION}"
DESELECT_FILE = HERE / "deselected.txt"
SUITE_NODE_ID = 0
SUITE_NUM_PARTITIONS = 4
SUITE_SESSION_TIMEOUT_MS_MIN = 1000
# Whole-suite deadline handed to pytest-timeout per test (seconds).
PER_TEST_TIMEOUT_S = 300


def fetch_sdist():
    """Download (once) and unpack the sdist; return the unpacked directory."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tarball = CACHE_DIR / f"{SDIST_NAME}.tar.gz"
    if not tarball.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
             f"kafka-python=={KAFKA_PYTHON_VERSION}", "-d", str(CACHE_DIR)],
            check=True)
    if not tarball.exists():
        raise SystemExit(f"pip download did not produce {tarball}")
    unpacked = CACHE_DIR / SDIST_NAME
    if unpacked.exists():
        shutil.rmtree(unpacked)
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers()
                   if m.name.startswith(f"{SDIST_NAME}/test/")
                   or m.name in (f"{SDIST_NAME}/pyproject.toml",)]
        tar.extractall(CACHE_DIR, members=members, filter="data")
    return unpacked


def install_shims(unpacked):
    shutil.copyfile(HERE / "test_init.py", unpacked / "test" / "__init__.py")
    shutil.copyfile(HERE / "service.py", unpacked / "test" / "service.py")


RACE_FILE = HERE / "client-race.txt"
# Tries for each test of client-race.txt: the client loses the race up to about half the time on a
# loaded machine (one test lost it 4 times running), so 15 tries; a broker bug would fail every try.
RACE_ATTEMPTS = 15
# A try that lost the race waits for something that never comes; each takes ~1 s when it wins.
RACE_ATTEMPT_TIMEOUT_S = 60
# Reruns of the main pass's failed tests (pytest --lf).
MAIN_PASS_RETRIES = 3


def node_ids(path):
    """Node ids of a list file (node id, then ` # reason`)."""
    ids = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        node_id, sep, reason = line.partition(" # ")
        if not sep or not reason.strip():
            raise SystemExit(f"{path}: every entry needs ' # <reason>': {line!r}")
        ids.append(node_id.strip())
    return ids


def deselect_args():
    """`--deselect` arguments from deselected.txt (node id, then `# reason`)."""
    args = []
    for line in DESELECT_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        node_id, sep, reason = line.partition(" # ")
        if not sep or not reason.strip():
            raise SystemExit(f"{DESELECT_FILE}: every entry needs ' # <reason>': {line!r}")
        args += ["--deselect", node_id.strip()]
    return args


def run_pytest(unpacked, env, extra):
    """The suite against the broker(s) named in `env`: the main pass with deselected.txt and
    client-race.txt left out, then each client-race test with up to RACE_ATTEMPTS tries."""
    cache_dir = Path(tempfile.mkdtemp(prefix="chronik-kp-pytest-cache-"))
    base = [sys.executable, "-m", "pytest", "-o", f"cache_dir={cache_dir}",
            "-o", "log_level=INFO", f"--timeout={PER_TEST_TIMEOUT_S}", "-ra"]
    race = node_ids(RACE_FILE)
    race_deselect = [a for t in race for a in ("--deselect", t)]
    cmd = [*base, "test/integration", *deselect_args(), *race_deselect, *extra]
    rc = subprocess.run(cmd, cwd=unpacked, env=env).returncode
    # The same client race (see client-race.txt) can hit any consumer test of the suite; a test that
    # failed is run again, alone, up to MAIN_PASS_RETRIES times. Every retry is printed.
    retry = 0
    while rc != 0 and retry < MAIN_PASS_RETRIES and not extra:
        retry += 1
        print(f"kafka-python suite: retry {retry} of the tests that failed (client race, see client-race.txt)", flush=True)
        rc = subprocess.run([*base, "--lf", f"--timeout={RACE_ATTEMPT_TIMEOUT_S}", "test/integration",
                             *deselect_args(), *race_deselect], cwd=unpacked, env=env).returncode
    if rc == 0 and not extra:
        for test in race:
            for attempt in range(1, RACE_ATTEMPTS + 1):
                r = subprocess.run([*base, f"--timeout={RACE_ATTEMPT_TIMEOUT_S}", test], cwd=unpacked, env=env).returncode
                print(f"kafka-python suite: client-race test {test} attempt {attempt}: "
                      f"{'passed' if r == 0 else 'failed'}", flush=True)
                if r == 0:
                    break
            else:
                rc = r
    return rc


def main(extra):
    unpacked = fetch_sdist()
    install_shims(unpacked)
    workdir = Path(tempfile.mkdtemp(prefix="chronik-kp-suite-"))
    kafka_root = workdir / "kafka-root"  # must exist; the fixtures never use it with KAFKA_URI
    kafka_root.mkdir()
    # Mirror the broker kafka-python's fixtures would have spawned (its
    # servers/resources/default/kafka.properties): num.partitions=4 (the fixture's
    # default), group.min.session.timeout.ms=1000 (test_group asks for a 3 s session).
    # That file also says broker.id=0, which test_create_partitions relies on.
    broker = Broker(workdir / "broker", node_id=SUITE_NODE_ID, auto_create_topics=True,
                    num_partitions=SUITE_NUM_PARTITIONS,
                    extra_config=f"group_session_timeout_ms_min = {SUITE_SESSION_TIMEOUT_MS_MIN}")
    try:
        broker.start()
    except BrokerError as e:
        print(f"kafka-python suite: broker did not start: {e}", file=sys.stderr)
        return 2
    print(f"kafka-python suite: chronik-server pid {broker.proc.pid} on {broker.bootstrap}, "
          f"KAFKA_VERSION={KAFKA_VERSION}", flush=True)
    env = dict(os.environ)
    env.update({
        "KAFKA_URI": f"tcp://{broker.bootstrap}",
        "KAFKA_VERSION": KAFKA_VERSION,
        "KAFKA_ROOT": str(kafka_root),
    })
    env.pop("ZOOKEEPER_URI", None)
    try:
        rc = run_pytest(unpacked, env, extra)
    finally:
        alive = broker.is_running()
        broker.stop()
    if not alive:
        print("kafka-python suite: chronik-server died during the run\n" + broker.log_tail(),
              file=sys.stderr)
        rc = rc or 3
    if rc != 0:
        # Keep the broker's data and full log for a post-mortem.
        print(f"kafka-python suite: failed (exit {rc}); broker log kept at {broker.log_path}",
              file=sys.stderr)
        if alive:
            print(broker.log_tail(), file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
