"""Shim for kafka-python's test/service.py, which its sdist does not ship.

Chronik's runner always sets KAFKA_URI, so the fixtures only ever wrap an
already-running broker in ExternalService. SpawnedService exists because
fixtures.py imports it; it refuses to start anything (we have no Kafka
distribution to spawn), so a test that needs its own broker fails loudly.
"""

import logging

__all__ = ["ExternalService", "SpawnedService"]

log = logging.getLogger(__name__)


class ExternalService:
    """A broker someone else started: nothing to open, close or wait for."""

    def __init__(self, host, port):
        log.info("Using the running broker at %s:%d", host, port)
        self.host = host
        self.port = port

    def open(self):
        pass

    def close(self):
        pass

    def start(self):
        pass

    def stop(self):
        pass

    def wait_for(self, pattern, timeout=30):
        # The broker is ready before pytest starts (the runner waits on /admin/health).
        return True

    def dump_logs(self):
        pass


class SpawnedService:
    """Would spawn a Kafka/ZooKeeper process from KAFKA_ROOT; not possible here."""

    def __init__(self, args=None, env=None):
        raise RuntimeError(
            "SpawnedService is not available: the Chronik runner tests an external broker "
            "(KAFKA_URI); a test that spawns its own broker belongs in deselected.txt")
