"""Start, stop, kill and restart a chronik-server process for tests.

Used by the pytest harness (conftest.py), by the runner of kafka-python's own
integration suite (tests/kafka-python-suite/run.py) and, as the base of each
cluster node, by cluster/chronik_cluster.py, so all of them start a broker the
same way: free loopback ports, a config file of its own in a temp dir, a
deadline on readiness, and stop by PID (never by process name).
"""

import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

# Deadlines (seconds). Readiness covers a cold start plus WAL recovery after kill -9.
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
ADMIN_HTTP_TIMEOUT_S = 3.0
POLL_INTERVAL_S = 0.1
# Lines of the broker's stderr shown when it fails to start or dies.
LOG_TAIL_LINES = 60

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO_ROOT / "target" / "release" / "chronik-server"


class BrokerError(RuntimeError):
    """The broker could not be started, became unhealthy or would not stop."""


def free_ports(count):
    """Return `count` distinct free TCP ports on 127.0.0.1 for brokers to bind.

    The ports come from below the kernel's ephemeral range, so an outgoing connection (a peer
    dialling another node, a client) is never given a port a broker is about to bind, and a port
    is never handed out twice by this process (two nodes of one cluster pick theirs one after
    the other). Each is checked free with a bind just before it is returned.
    """
    ports = []
    while len(ports) < count:
        port = _PORT_PICKER.randrange(PORT_PICK_MIN, _ephemeral_start())
        if port in _PORTS_HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_HANDED_OUT.add(port)
        ports.append(port)
    return ports


# Lowest port free_ports picks; the top is the start of the kernel's ephemeral range.
PORT_PICK_MIN = 20000
_PORT_PICKER = random.Random()
_PORTS_HANDED_OUT = set()


def _ephemeral_start():
    """First port of the kernel's ephemeral range (32768 if it cannot be read)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, PORT_PICK_MIN + 1000)


def terminate(proc, timeout_s=STOP_TIMEOUT_S):
    """Stops a process we started, by PID: SIGTERM, then SIGKILL if it has not exited within
    `timeout_s`. Nothing to do if it has already exited."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def toml_value(v):
    """A TOML literal for a bool, an int, a str or a list of those."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return str(v)


def admin_get(addr, path):
    """GET http://addr/path as JSON; raises OSError/ValueError when down or malformed."""
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=ADMIN_HTTP_TIMEOUT_S) as resp:
        return json.loads(resp.read().decode("utf-8", "replace"))


def binary_path():
    """The chronik-server binary: $CHRONIK_SERVER_BIN or target/release/chronik-server."""
    path = Path(os.environ.get("CHRONIK_SERVER_BIN", DEFAULT_BINARY))
    if not path.is_file():
        raise BrokerError(
            f"chronik-server binary not found at {path}; "
            "run `cargo build --release -p chronik-server` or set CHRONIK_SERVER_BIN")
    return path


class Broker:
    """One chronik-server process on its own ports, config and data dir.

    The ports and data dir stay fixed for the object's life so `kill9()` +
    `start()` restarts the same node on the same data, as a crash would.
    """

    # Readiness: a lone broker elects itself, so it must report a leader ("status": "ok").
    needs_leader = True
    ready_timeout_s = READY_TIMEOUT_S

    def __init__(self, workdir, node_id=1, auto_create_topics=True, num_partitions=1,
                 extra_config="", host="127.0.0.1", ports=None, command_prefix=(), data_dir=None,
                 settings=None):
        """`host`, `ports` ({listener: port}, default free loopback ports) and `command_prefix`
        (e.g. `ip netns exec NS`) place the broker on a host of its own (faults/netns.py);
        `data_dir` puts the data elsewhere (a small file system of its own, for disk-full tests)
        while the config and the log stay in `workdir`; `settings` ({key: value}) overrides the
        defaults written below (e.g. {"fsync": "never"})."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(data_dir) if data_dir is not None else self.workdir / "data"
        self.config_path = self.workdir / "chronik.toml"
        self.node_id = node_id
        self.host = host
        self.command_prefix = list(command_prefix)
        if ports is None:
            ports = dict(zip(("kafka", "wal", "raft", "admin"), free_ports(4)))
        self.kafka_port, self.wal_port, self.raft_port, self.admin_port = (
            ports["kafka"], ports["wal"], ports["raft"], ports["admin"])
        self.proc = None
        self.paused = False
        self.starts = 0
        self._log_file = None
        self.write_config({
            "auto_create_topics": auto_create_topics,
            "num_partitions": num_partitions,
            "group_initial_rebalance_delay_ms": 0,
            "fsync": "always",
            **(settings or {}),
        }, extra_config)

    @property
    def name(self):
        """How messages name this process."""
        return "chronik-server"

    @property
    def bootstrap(self):
        return f"{self.host}:{self.kafka_port}"

    @property
    def admin_addr(self):
        return f"{self.host}:{self.admin_port}"

    @property
    def log_path(self):
        return self.workdir / "broker.log"

    @property
    def addresses(self):
        """{listener: port} in the order the config's [bind], [advertise] and [[peers]] list them."""
        return {"kafka": self.kafka_port, "wal": self.wal_port,
                "raft": self.raft_port, "admin": self.admin_port}

    def write_config(self, settings, extra_config="", peers=()):
        """Write chronik.toml: node id, data dir, `settings` ({key: bool, int or str}),
        `extra_config` as raw TOML, this node's own addresses and one [[peers]] table per
        broker in `peers` (a cluster lists every node, this one included)."""
        own = [f'{k} = "{self.host}:{p}"' for k, p in self.addresses.items()]
        lines = [
            f"node_id = {self.node_id}",
            f'data_dir = "{self.data_dir}"',
            *[f"{k} = {toml_value(v)}" for k, v in settings.items()],
            extra_config.strip(),
            "",
            "[bind]", *own, "",
            "[advertise]", *own, "",
        ]
        for p in peers:
            lines += ["[[peers]]", f"id = {p.node_id}",
                      *[f'{k} = "{p.host}:{port}"' for k, port in p.addresses.items()], ""]
        self.config_path.write_text("\n".join(lines))

    # ---- life cycle -------------------------------------------------------

    def spawn(self):
        """Start the process without waiting for it to serve."""
        if self.is_running():
            raise BrokerError(f"{self.name} already running as pid {self.proc.pid}")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("NO_COLOR", "1")  # plain log files
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n==== start #{self.starts + 1} ====\n".encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(
            [*self.command_prefix, str(binary_path()), "start", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            env=env, cwd=self.workdir)
        self.starts += 1

    def start(self, timeout_s=None):
        """Start the process and wait until it serves, or stop it by PID and raise BrokerError."""
        self.spawn()
        try:
            self.wait_healthy(timeout_s)
        except BrokerError:
            self.stop()  # one that never served is not left running
            raise
        return self

    def wait_healthy(self, timeout_s=None):
        """Wait until /admin/health answers (with status "ok" unless a leader may be unknown
        yet, see `needs_leader`) and the Kafka port accepts; raise BrokerError if the process
        exits first or the deadline (default `ready_timeout_s`) passes."""
        timeout_s = self.ready_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(
                    f"{self.name} exited with code {self.proc.returncode} during start\n"
                    + self.log_tail())
            ok, last = self._serving()
            if ok:
                return
            time.sleep(POLL_INTERVAL_S)
        raise BrokerError(
            f"{self.name} not serving within {timeout_s:.0f}s (last: {last})\n" + self.log_tail())

    def _serving(self):
        """(ok, detail): the admin API answers as wait_healthy wants and the Kafka port accepts."""
        try:
            health = self.health()
        except (OSError, ValueError) as e:
            return False, str(e)
        if not isinstance(health, dict):
            return False, f"not a JSON object: {str(health)[:200]}"
        if self.needs_leader and health.get("status") != "ok":
            return False, str(health)[:200]
        if not self._kafka_port_accepts():
            return False, f"admin API up ({health.get('status')}), Kafka port not accepting"
        return True, ""

    def health(self):
        """GET /admin/health as JSON; raises OSError/ValueError when down or malformed."""
        return admin_get(self.admin_addr, "/admin/health")

    def _kafka_port_accepts(self):
        try:
            with socket.create_connection((self.host, self.kafka_port), timeout=1.0):
                return True
        except OSError:
            return False

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """SIGKILL the process (a crash: no flush, no shutdown) and reap it."""
        if not self.is_running():
            raise BrokerError(f"kill9: {self.name} is not running\n" + self.log_tail())
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)
        self._close_log()

    def pause(self):
        """SIGSTOP the process: it keeps its sockets and memory but runs nothing (a long GC pause,
        a VM stall, a stuck disk) until resume()."""
        if not self.is_running():
            raise BrokerError(f"pause: {self.name} is not running\n" + self.log_tail())
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        """SIGCONT a paused process."""
        if self.is_running():
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def restart_after_crash(self, timeout_s=None):
        """kill -9 then start again on the same data dir, config and ports."""
        self.kill9()
        return self.start(timeout_s)

    def stop(self):
        """SIGTERM by PID, SIGKILL if it does not exit within STOP_TIMEOUT_S."""
        if self.proc is None:
            return
        if self.paused:
            self.resume()
        terminate(self.proc)
        self._close_log()

    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines=LOG_TAIL_LINES):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no broker log)"
        return "---- chronik-server log (tail) ----\n" + "\n".join(text[-lines:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
