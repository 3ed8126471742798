"""A private network of namespaces for the fault campaign: every broker on a host of its own.

    bridge namespace  <prefix>-br : bridge `br0`, 10.80.0.254/24 (the clients' host)
    node namespace    <prefix>-n<i>: `eth0`, 10.80.0.<i>/24, a veth onto br0

The addresses exist only inside these namespaces, so faults are cut in the kernel and nothing
of the machine's own network is touched. The test process itself joins the bridge namespace
(`Network.entered()`, the calling thread only; threads it starts inherit it), so its clients
connect as a real client on another host would. Faults are nftables rules in a node's
namespace (`drop`, `lose`): one table per node, flushed by `heal()`. Delay needs the kernel's
netem qdisc (`delay_supported()`); this machine's kernel may lack it, and the campaign then
says so and skips delay.

`Network.destroy()` deletes every namespace it made (their veths and rules go with them) and
is safe to call twice; `network()` is the context manager that always calls it.
"""

import contextlib
import ctypes
import os
import shutil
import subprocess

SUBNET = "10.80.0"
BRIDGE_ADDR = f"{SUBNET}.254"
PREFIX_LEN = 24
CLONE_NEWNET = 0x40000000
NFT_TABLE = "chaos"
CMD_TIMEOUT_S = 10

_libc = ctypes.CDLL(None, use_errno=True)


class NetError(RuntimeError):
    """A namespace, link or rule could not be made or removed."""


def sh(*args, check=True, input_text=None):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=CMD_TIMEOUT_S, input=input_text)
    if check and r.returncode != 0:
        raise NetError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def missing_tools():
    """What the campaign needs and this machine lacks (empty when it can run)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            missing.append(tool)
    return missing


def _setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetError(f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class Network:
    def __init__(self, node_ids, prefix=None):
        self.prefix = prefix or f"chk{os.getpid()}"
        self.node_ids = list(node_ids)
        self.bridge_ns = f"{self.prefix}-br"
        self.made = []  # namespaces created, deleted by destroy()
        self.rules = {}  # node -> list of nft rule texts in force

    # ---- names and addresses ------------------------------------------------

    def ns(self, node_id):
        return f"{self.prefix}-n{node_id}"

    @staticmethod
    def addr(node_id):
        if not 1 <= node_id <= 250:
            raise NetError(f"node id {node_id} has no address in {SUBNET}.0/{PREFIX_LEN}")
        return f"{SUBNET}.{node_id}"

    def exec_prefix(self, node_id):
        """The command prefix that runs a program on node `node_id`'s host."""
        return ["ip", "netns", "exec", self.ns(node_id)]

    # ---- building and tearing down --------------------------------------------

    def create(self):
        try:
            self._add_ns(self.bridge_ns)
            sh("ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", self.bridge_ns, "addr", "add", f"{BRIDGE_ADDR}/{PREFIX_LEN}", "dev", "br0")
            sh("ip", "-n", self.bridge_ns, "link", "set", "br0", "up")
            for i in self.node_ids:
                self.add_node(i)
        except BaseException:
            self.destroy()
            raise
        return self

    def add_node(self, node_id):
        ns, port = self.ns(node_id), f"v{node_id}"
        self._add_ns(ns)
        sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", self.bridge_ns)
        sh("ip", "-n", ns, "addr", "add", f"{self.addr(node_id)}/{PREFIX_LEN}", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", self.bridge_ns, "link", "set", port, "master", "br0")
        sh("ip", "-n", self.bridge_ns, "link", "set", port, "up")
        sh("ip", "netns", "exec", ns, "nft", f"add table inet {NFT_TABLE}")
        sh("ip", "netns", "exec", ns, "nft",
           f"add chain inet {NFT_TABLE} out {{ type filter hook output priority 0; policy accept; }}")
        sh("ip", "netns", "exec", ns, "nft",
           f"add chain inet {NFT_TABLE} in {{ type filter hook input priority 0; policy accept; }}")
        if node_id not in self.node_ids:
            self.node_ids.append(node_id)

    def _add_ns(self, name):
        sh("ip", "netns", "add", name)
        self.made.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def destroy(self):
        errors = []
        for name in reversed(self.made):
            r = sh("ip", "netns", "del", name, check=False)
            if r.returncode != 0 and "No such file" not in r.stderr:
                errors.append(f"{name}: {r.stderr.strip()}")
        self.made = []
        if errors:
            raise NetError("could not delete namespaces: " + "; ".join(errors))

    @contextlib.contextmanager
    def entered(self, node_id=None):
        """Run the block (on this thread, and in threads it starts) on the bridge's host, or with
        `node_id` on that node's host: a client there reaches what that node reaches, no more."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(f"/var/run/netns/{self.bridge_ns if node_id is None else self.ns(node_id)}")
            try:
                yield self
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise NetError(f"could not return to the test's own network: "
                                   f"{os.strerror(ctypes.get_errno())}")
        finally:
            os.close(own)

    # ---- faults -----------------------------------------------------------------

    def _nft(self, node_id, command):
        sh("ip", "netns", "exec", self.ns(node_id), "nft", command)

    def drop(self, src, dst):
        """Packets from `src` to `dst` are dropped (one way; `dst` still sends to `src`). Dropped
        on the way out of src and on the way into dst, so neither host's rules alone let them by."""
        self._nft(src, f"add rule inet {NFT_TABLE} out ip daddr {self.addr(dst)} drop")
        self._nft(dst, f"add rule inet {NFT_TABLE} in ip saddr {self.addr(src)} drop")
        self.rules.setdefault(src, []).append(f"drop to {dst}")

    def cut(self, a, b):
        """No packet between `a` and `b` in either direction."""
        self.drop(a, b)
        self.drop(b, a)

    def lose(self, src, dst, percent):
        """`percent` % of the packets from `src` to `dst` are dropped at random."""
        self._nft(src, f"add rule inet {NFT_TABLE} out ip daddr {self.addr(dst)} "
                       f"numgen random mod 100 < {int(percent)} drop")
        self.rules.setdefault(src, []).append(f"lose {percent}% to {dst}")

    def heal(self):
        """Every fault rule removed; the links stay up."""
        for i in self.node_ids:
            for chain in ("out", "in"):
                self._nft(i, f"flush chain inet {NFT_TABLE} {chain}")
        self.rules = {}

    def delay_supported(self):
        """Whether the kernel has tc netem (delay). Tried on a dummy link in the bridge namespace."""
        probe = "netemprobe"
        sh("ip", "-n", self.bridge_ns, "link", "add", probe, "type", "dummy", check=False)
        r = sh("ip", "netns", "exec", self.bridge_ns, "tc", "qdisc", "add", "dev", probe, "root",
               "netem", "delay", "1ms", check=False)
        sh("ip", "-n", self.bridge_ns, "link", "del", probe, check=False)
        return r.returncode == 0

    def delay(self, node_id, ms):
        """Every packet node `node_id` sends waits `ms` (netem; see delay_supported)."""
        sh("ip", "netns", "exec", self.ns(node_id), "tc", "qdisc", "replace", "dev", "eth0", "root",
           "netem", "delay", f"{int(ms)}ms")

    def undelay(self, node_id):
        sh("ip", "netns", "exec", self.ns(node_id), "tc", "qdisc", "del", "dev", "eth0", "root", check=False)


def sweep_stale(prefix_head="chk"):
    """Deletes namespaces a killed earlier run left behind (`chk<pid>-…` whose pid is gone), first
    killing (SIGKILL, by PID) every process still running in them. Returns the names deleted."""
    r = sh("ip", "netns", "list", check=False)
    swept = []
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        owner = name[len(prefix_head):].split("-", 1)[0]
        if not name.startswith(prefix_head) or not owner.isdigit() or int(owner) == os.getpid():
            continue
        if os.path.exists(f"/proc/{owner}"):
            continue
        for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", name, check=False)
        swept.append(name)
    return swept


@contextlib.contextmanager
def network(node_ids, prefix=None):
    sweep_stale()
    net = Network(node_ids, prefix).create()
    try:
        yield net
    finally:
        net.destroy()
