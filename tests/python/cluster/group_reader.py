"""A consumer group reading a topic while a cluster test changes the cluster, and the check that it
read every record once its commits are taken into account.

Each member (confluent-kafka, manual commits) runs in its own thread, records every delivery with the
group's committed offset of that partition at the moment of delivery, and commits its positions every
COMMIT_EVERY_S. Afterwards `violations` checks:

- every acknowledged value was delivered to the group;
- a record delivered twice was never below the group's committed offset when delivered again
  (re-delivery is only allowed for what was not yet committed, as after a rebalance);
- the final committed offsets are the ends of what was acknowledged.
"""

import threading
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from kafka_helpers import wait_for

COMMIT_EVERY_S = 1.0
DRAIN_TIMEOUT_S = 120.0
SESSION_TIMEOUT_MS = 10_000


class GroupReader:
    def __init__(self, bootstrap, topic, group, members=2):
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.lock = threading.Lock()
        self.deliveries = []  # (partition, offset, value, committed offset of the partition then)
        self.committed = {}   # partition -> highest offset the group committed
        self.errors = []
        # for the drain's diagnosis: when a commit last succeeded, how many failed and the last failure
        self.last_commit_at, self.commit_failures, self.last_commit_error = None, 0, None
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True, name=f"member-{n}")
                        for n in range(members)]

    def _consumer(self, n):
        c = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": self.group, "client.id": f"member-{n}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 500,
            "enable.partition.eof": False,
        })
        c.subscribe([self.topic])
        return c

    def _commit(self, c):
        try:
            done = c.commit(asynchronous=False)
        except KafkaException as e:
            with self.lock:
                self.commit_failures += 1
                self.last_commit_error = str(e)
            return  # nothing to commit, or a coordinator/rebalance moment: the next round retries
        with self.lock:
            self.last_commit_at = time.monotonic()
            for tp in done or []:
                if tp.error is None and tp.offset >= 0:
                    self.committed[tp.partition] = max(self.committed.get(tp.partition, 0), tp.offset)

    def _run(self, n):
        c = self._consumer(n)
        last_commit = time.monotonic()
        try:
            while not self.stop_event.is_set():
                for m in c.consume(num_messages=500, timeout=0.5):
                    if m.error() is not None:
                        if m.error().fatal():
                            self.errors.append(str(m.error()))
                        continue
                    with self.lock:
                        floor = self.committed.get(m.partition(), 0)
                        self.deliveries.append((m.partition(), m.offset(), m.value(), floor))
                if time.monotonic() - last_commit >= COMMIT_EVERY_S:
                    self._commit(c)
                    last_commit = time.monotonic()
            self._commit(c)
        finally:
            c.close()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def delivered(self):
        with self.lock:
            return {v for _, _, v, _ in self.deliveries}

    def drain(self, load):
        """Until every value `load` had acknowledged was delivered and committed, then stops."""
        acked = dict(load.log.acked)
        ends = {}
        for p, o in acked.values():
            if o is not None and o >= 0:  # a report without an offset is the checker's to judge
                ends[p] = max(ends.get(p, 0), o + 1)
        def drained():
            return set(acked) <= self.delivered() and all(self.committed.get(p, 0) >= e for p, e in ends.items())

        try:
            wait_for(drained, DRAIN_TIMEOUT_S, f"the group to read and commit {len(acked)} acknowledged records",
                     interval_s=0.2)
        except AssertionError as e:
            raise AssertionError(f"{e}: {self._lag(acked, ends)}") from None
        self.stop()

    def _lag(self, acked, ends):
        """What the group still lacks: undelivered values per partition, commits short of the ends."""
        undelivered = {}
        delivered = self.delivered()
        for v, (p, _) in acked.items():
            if v not in delivered:
                undelivered[p] = undelivered.get(p, 0) + 1
        with self.lock:
            short = {p: (self.committed.get(p), e) for p, e in sorted(ends.items()) if self.committed.get(p, 0) < e}
            last, failures, failure = self.last_commit_at, self.commit_failures, self.last_commit_error
        since = "never" if last is None else f"{time.monotonic() - last:.1f}s ago"
        return (f"undelivered per partition {dict(sorted(undelivered.items()))}; "
                f"committed vs end {short}; last successful commit {since}; "
                f"{failures} commits failed, the last with {failure}; fatal errors {self.errors[:3]}")

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=30)

    def violations(self, load):
        acked = dict(load.log.acked)
        out = []
        if self.errors:
            out.append(f"fatal consumer errors: {self.errors[:3]}")
        missing = set(acked) - self.delivered()
        if missing:
            out.append(f"{len(missing)} acknowledged values never delivered to the group, e.g. {sorted(missing)[:5]}")
        seen, below_commit = set(), []
        for p, o, _, floor in self.deliveries:
            if (p, o) in seen and o < floor:
                below_commit.append((p, o, floor))
            seen.add((p, o))
        if below_commit:
            out.append(f"{len(below_commit)} records delivered again below the committed offset, e.g. {below_commit[:5]}")
        return out

    def summary(self):
        with self.lock:
            distinct = len({(p, o) for p, o, _, _ in self.deliveries})
            return f"{len(self.deliveries)} deliveries of {distinct} records, committed {dict(sorted(self.committed.items()))}"
