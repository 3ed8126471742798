"""Background sampling for cluster tests: a thread that calls `sample()` every `interval_s` between
entering and leaving a `with` block. A sample that fails the way a changing cluster makes requests fail
(a node restarting, a leader moving: OSError, ValueError, AssertionError, KeyError) is skipped and the
next one runs."""

import threading

SAMPLE_FAILURES = (OSError, ValueError, AssertionError, KeyError)


class Sampler:
    interval_s = 0.2

    def __init__(self):
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sample(self):
        raise NotImplementedError

    def _run(self):
        while not self.stop_event.is_set():
            try:
                self.sample()
            except SAMPLE_FAILURES:
                pass
            self.stop_event.wait(self.interval_s)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(timeout=10)
