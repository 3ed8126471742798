"""The nemeses of the fault campaign: each one fault, injected and healed, combinable.

A nemesis picks its victims when injected (the metadata leader, a partition leader, ...), so
the same schedule works on any cluster. `inject(ctx)` cuts, `heal(ctx)` mends; both return at
once (what the cluster does about it is measured by campaign.py). `Combined` runs several at
the same time. Every nemesis names itself (`name`) for the one-line report.
"""

import os
import random

from small_fs import fill, free_bytes


def metadata_leader(ctx):
    leader, _ = ctx.cluster.wait_agreed_leader(timeout_s=30)
    return leader


def partition_leader(ctx, exclude=()):
    """A node leading at least one partition of the scenario's topic, not the metadata leader
    when another leads any (so the fault hits the data path alone)."""
    meta = metadata_leader(ctx)
    leaders = [p["leader"] for p in ctx.cluster.partitions(ctx.topic).values() if p["leader"] and p["leader"] > 0]
    candidates = [n for n in leaders if n != meta and n not in exclude] or [n for n in leaders if n not in exclude]
    return candidates[0]


class Nemesis:
    name = "nemesis"
    # Nodes that are down or unreachable while the fault lasts; filled by inject().
    victims = ()
    # Whether the fault removes the metadata leader (so an election is expected).
    hits_metadata_leader = False
    # Whether clients still reach the victims (cut off from the other nodes only): whatever the
    # victims still believe they lead is then offered writes, which must not be acknowledged.
    clients_reach_victims = False

    def inject(self, ctx):
        raise NotImplementedError

    def heal(self, ctx):
        raise NotImplementedError


class Kill9(Nemesis):
    """kill -9 a node; heal starts it again on the same data."""

    def __init__(self, target="partition_leader"):
        self.target = target
        self.name = f"kill9-{target}"

    def inject(self, ctx):
        meta = metadata_leader(ctx)
        victim = meta if self.target == "metadata_leader" else partition_leader(ctx)
        self.hits_metadata_leader = victim == meta
        self.victims = (victim,)
        ctx.cluster.kill9(victim)

    def heal(self, ctx):
        for v in self.victims:
            ctx.cluster.nodes[v].start()


class Pause(Nemesis):
    """SIGSTOP a node (longer than the session and election timeouts when held so); SIGCONT heals.
    The node keeps its sockets and wakes up believing what it believed."""

    def __init__(self, target="metadata_leader"):
        self.target = target
        self.name = f"pause-{target}"

    def inject(self, ctx):
        meta = metadata_leader(ctx)
        victim = meta if self.target == "metadata_leader" else partition_leader(ctx)
        self.hits_metadata_leader = victim == meta
        self.victims = (victim,)
        ctx.cluster.nodes[victim].pause()

    def heal(self, ctx):
        for v in self.victims:
            ctx.cluster.nodes[v].resume()


class Isolate(Nemesis):
    """No packet between the victim and any other node; clients still reach it (they are on the
    bridge), so whatever it still believes it leads is offered to them."""

    clients_reach_victims = True

    def __init__(self, target="metadata_leader"):
        self.target = target
        self.name = f"isolate-{target}"

    def inject(self, ctx):
        meta = metadata_leader(ctx)
        victim = meta if self.target == "metadata_leader" else partition_leader(ctx)
        self.hits_metadata_leader = victim == meta
        self.victims = (victim,)
        for other in ctx.cluster.nodes:
            if other != victim:
                ctx.net.cut(victim, other)

    def heal(self, ctx):
        ctx.net.heal()


class Split(Nemesis):
    """Majority and minority: the metadata leader and as few others as make a minority on one side."""

    clients_reach_victims = True

    name = "split-majority-minority"

    def inject(self, ctx):
        meta = metadata_leader(ctx)
        nodes = sorted(ctx.cluster.nodes)
        others = [n for n in nodes if n != meta]
        minority = [meta] + others[: (len(nodes) - 1) // 2 - 1]
        majority = [n for n in nodes if n not in minority]
        for a in minority:
            for b in majority:
                ctx.net.cut(a, b)
        self.victims = tuple(minority)
        self.hits_metadata_leader = True

    def heal(self, ctx):
        ctx.net.heal()


class Bridge(Nemesis):
    """Two halves that cannot see each other, and one node that sees both (Jepsen's bridge). The
    metadata leader is put in the smaller half, away from the bridge."""

    name = "bridge"

    def inject(self, ctx):
        meta = metadata_leader(ctx)
        nodes = sorted(ctx.cluster.nodes)
        if len(nodes) < 5:
            raise AssertionError("the bridge needs 5 nodes")
        others = [n for n in nodes if n != meta]
        bridge = others[0]
        half_a = [meta] + others[1: (len(nodes) - 1) // 2]
        half_b = [n for n in nodes if n not in half_a and n != bridge]
        for a in half_a:
            for b in half_b:
                ctx.net.cut(a, b)
        # Nobody is cut off from a majority (the bridge makes one with either half), so nothing is
        # required to move; what the cluster does about it is left to the checker to judge.
        self.victims = ()
        self.name = f"bridge {half_a}|{bridge}|{half_b}"

    def heal(self, ctx):
        ctx.net.heal()


class OneWay(Nemesis):
    """The metadata leader's packets to every other node are lost; theirs still reach it."""

    clients_reach_victims = True

    name = "one-way-from-metadata-leader"

    def inject(self, ctx):
        meta = metadata_leader(ctx)
        for other in ctx.cluster.nodes:
            if other != meta:
                ctx.net.drop(meta, other)
        self.victims = (meta,)
        self.hits_metadata_leader = True

    def heal(self, ctx):
        ctx.net.heal()


class Loss(Nemesis):
    """`percent` % of the packets between every two nodes are lost at random, both ways."""

    def __init__(self, percent=20):
        self.percent = percent
        self.name = f"loss-{percent}%"

    def inject(self, ctx):
        nodes = sorted(ctx.cluster.nodes)
        for a in nodes:
            for b in nodes:
                if a != b:
                    ctx.net.lose(a, b, self.percent)

    def heal(self, ctx):
        ctx.net.heal()


class Delay(Nemesis):
    """Every packet the metadata leader sends waits `ms` (tc netem; Network.delay_supported())."""

    def __init__(self, ms=200):
        self.ms = ms
        self.name = f"delay-{ms}ms-from-metadata-leader"

    def inject(self, ctx):
        self.node = metadata_leader(ctx)
        ctx.net.delay(self.node, self.ms)

    def heal(self, ctx):
        ctx.net.undelay(self.node)


class KillMany(Nemesis):
    """kill -9 `count` nodes at once, the metadata leader among them; heal starts them again."""

    def __init__(self, count):
        self.count = count
        self.name = f"kill9-{count}-nodes"

    def inject(self, ctx):
        meta = metadata_leader(ctx)
        others = [n for n in sorted(ctx.cluster.nodes) if n != meta]
        self.victims = tuple([meta] + others[: self.count - 1])
        self.hits_metadata_leader = True
        for v in self.victims:
            ctx.cluster.kill9(v)

    def heal(self, ctx):
        for v in self.victims:
            ctx.cluster.nodes[v].start()


class RollingRestart(Nemesis):
    """Each node in turn: SIGTERM, start again, wait until every partition of the topic has its
    full ISR. Injecting runs the whole roll; healing has nothing left to do."""

    name = "rolling-restart"

    def inject(self, ctx):
        for n in sorted(ctx.cluster.nodes):
            ctx.cluster.nodes[n].stop()
            ctx.cluster.nodes[n].start()
            ctx.cluster.wait_full_isr(ctx.topic)

    def heal(self, ctx):
        pass


class DiskFull(Nemesis):
    """The data disk of a node that leads partitions (not the metadata leader) fills up: a filler
    file takes all but `leave_bytes`; healing deletes it. Needs a NetCluster with `disk_bytes`."""

    def __init__(self, leave_bytes=1 << 20):
        self.leave_bytes = leave_bytes
        self.name = "disk-full-partition_leader"

    def inject(self, ctx):
        self.node = partition_leader(ctx)
        self.filler = ctx.cluster.disk(self.node) / "filler"
        fill(self.filler, self.leave_bytes)
        print(f"[campaign] node {self.node}'s disk filled: {free_bytes(self.filler.parent)} bytes free")

    def heal(self, ctx):
        print(f"[campaign] node {self.node}'s disk at heal: {free_bytes(self.filler.parent)} bytes free")
        if self.filler.exists():
            os.remove(self.filler)


class DiskFullFollowers(Nemesis):
    """The data disks of the two followers of a partition fill up (RF 3): they cannot store what
    they fetch, fall out of the ISR, and acks=all to the partitions only the third node can still
    write gets NOT_ENOUGH_REPLICAS (min ISR 2). `leader` keeps its disk; healing deletes the fillers."""

    def __init__(self, leave_bytes=1 << 20):
        self.leave_bytes = leave_bytes
        self.name = "disk-full-followers"

    def inject(self, ctx):
        self.leader = partition_leader(ctx)
        self.nodes = [n for n in sorted(ctx.cluster.nodes) if n != self.leader]
        self.fillers = [ctx.cluster.disk(n) / "filler" for n in self.nodes]
        for f in self.fillers:
            fill(f, self.leave_bytes)
        print(f"[campaign] disks of nodes {self.nodes} filled; node {self.leader} keeps its disk")

    def heal(self, ctx):
        for f in self.fillers:
            if f.exists():
                os.remove(f)


class Combined(Nemesis):
    def __init__(self, *parts):
        self.parts = parts
        self.name = "+".join(p.name for p in parts)

    def inject(self, ctx):
        for p in self.parts:
            p.inject(ctx)
        self.victims = tuple(v for p in self.parts for v in p.victims)
        self.hits_metadata_leader = any(p.hits_metadata_leader for p in self.parts)

    def heal(self, ctx):
        for p in reversed(self.parts):
            p.heal(ctx)


def random_nemesis(rng: random.Random, nodes, disks=False):
    """One nemesis drawn for the soak (scripts/faults): any fault a cluster of `nodes` survives
    (with `disks`, the nodes' data on file systems of their own, a full disk too)."""
    choices = [
        lambda: Kill9("metadata_leader"), lambda: Kill9("partition_leader"),
        lambda: Pause("metadata_leader"), lambda: Pause("partition_leader"),
        lambda: Isolate("metadata_leader"), lambda: Isolate("partition_leader"),
        lambda: Split(), lambda: OneWay(), lambda: Loss(rng.choice([10, 20, 30])),
    ]
    if nodes >= 5:
        choices += [lambda: Bridge(), lambda: KillMany(2)]
    if disks:
        choices.append(lambda: DiskFull())
    return rng.choice(choices)()
