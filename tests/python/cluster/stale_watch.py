"""What only a stale controller decision would produce, watched while a cut-off or paused node comes
back: a survivor fenced, or a partition led by a returning node with an ISR of returning nodes
only. Used by test_cluster_pause.py and the fault campaign (faults/campaign.py)."""

import threading

from chronik_broker import admin_get

WATCH_INTERVAL_S = 0.05


class StaleDecisionWatch:
    """Polls the survivors' /admin/status until stopped and records what only a stale
    controller decision would produce."""

    def __init__(self, cluster, topic, victims, survivors):
        self.cluster, self.topic, self.victims, self.survivors = cluster, topic, set(victims), survivors
        self.seen = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="stale-decision-watch", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        while not self.stop_event.is_set():
            for i in self.survivors:
                try:
                    status = admin_get(self.cluster.nodes[i].admin_addr, "/admin/status")
                except (OSError, ValueError):
                    continue
                for n in status.get("nodes", []):
                    if n["id"] in self.survivors and not n.get("live", True):
                        self.seen.append(f"node {i} sees survivor {n['id']} fenced")
                for p in status.get("partitions", []):
                    if p["topic"] == self.topic and p["leader"] in self.victims and set(p["isr"]) <= self.victims:
                        self.seen.append(f"node {i} sees {self.topic}-{p['partition']} led by node "
                                         f"{p['leader']} with ISR {p['isr']} (all of them cut off)")
            self.stop_event.wait(WATCH_INTERVAL_S)

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=10)
        return sorted(set(self.seen))
