"""The long fault soak: `scripts/faults --minutes N [--seed S] [--nodes 5]`.

One cluster on its own network (netns.py) for the whole run; round after round a nemesis drawn
from a seeded random schedule (nemeses.random_nemesis) is injected, held 10–20 s and healed, each
round on a topic of its own with producers, a consumer group and the record-by-record check
(campaign.run_scenario). The seed is printed first, so a failing schedule replays with --seed.
At the end a table: nemeses injected, records acknowledged, violations (must be 0) and p50/p99 of
the election, partition-failover and catch-up times. Exit status 1 on any violation or error.
"""

import argparse
import collections
import random
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaign import run_scenario  # noqa: E402
from netcluster import NetCluster  # noqa: E402
from netns import missing_tools, network  # noqa: E402
from nemeses import random_nemesis  # noqa: E402
from small_fs import MountError  # noqa: E402

# Long enough for a failover (broker session 6 s, then the controller's decision) in most rounds.
HOLD_S_MIN, HOLD_S_MAX = 10.0, 20.0
# Each node's data on a file system of this size, so a round can fill one (each round writes a few MB).
SOAK_DISK_BYTES = 1 << 30


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def table(outcomes, seed, minutes):
    kinds = collections.Counter(o.nemesis.split(" ")[0] for o in outcomes)
    rows = [f"soak: seed {seed}, {minutes} min, {len(outcomes)} rounds",
            "nemeses: " + ", ".join(f"{k} ×{n}" for k, n in sorted(kinds.items())),
            f"records acknowledged: {sum(o.acked for o in outcomes)}; found: {sum(o.found for o in outcomes)}; "
            f"violations: {sum(len(o.violations) for o in outcomes)}"]
    for what in ("election_s", "failover_s", "catch_up_s"):
        vals = [getattr(o, what) for o in outcomes if getattr(o, what) is not None]
        p50, p99 = percentile(vals, 50), percentile(vals, 99)
        rows.append(f"{what[:-2]}: n={len(vals)} p50={'-' if p50 is None else f'{p50:.1f}s'} "
                    f"p99={'-' if p99 is None else f'{p99:.1f}s'}")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--nodes", type=int, default=5)
    args = ap.parse_args()
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every broker is stopped by PID and
    # every namespace deleted on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    missing = missing_tools()
    if missing:
        print("scripts/faults needs " + ", ".join(missing), file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    print(f"soak: seed {seed} (replay: scripts/faults --minutes {args.minutes:g} --seed {seed} --nodes {args.nodes})",
          flush=True)
    rng = random.Random(seed)
    outcomes, failed = [], None
    deadline = time.monotonic() + args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="chronik-soak-") as work, \
            network(range(1, args.nodes + 1)) as net, net.entered():
        try:
            cluster = NetCluster(Path(work) / "cluster", net, nodes=args.nodes, disk_bytes=SOAK_DISK_BYTES)
            disks = True
        except MountError as e:
            print(f"soak: no small file systems ({e}): no disk-full rounds", flush=True)
            cluster, disks = NetCluster(Path(work) / "cluster", net, nodes=args.nodes), False
        try:
            cluster.start()
            n = 0
            while time.monotonic() < deadline:
                n += 1
                nemesis = random_nemesis(rng, args.nodes, disks)
                hold = rng.uniform(HOLD_S_MIN, HOLD_S_MAX)
                outcome = run_scenario(cluster, net, f"soak-{n}", nemesis, hold, topic=f"soak-{n}")
                outcomes.append(outcome)
                if outcome.violations:
                    failed = f"round {n} ({nemesis.name}): " + "; ".join(outcome.violations)
                    break
        except Exception:  # noqa: BLE001 - the soak reports any failure with its seed, then exits 1
            failed = traceback.format_exc()
            print(cluster.log_tails(30), file=sys.stderr)
        finally:
            cluster.stop()
    print(table(outcomes, seed, args.minutes))
    if failed:
        print(f"soak FAILED (seed {seed}): {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
