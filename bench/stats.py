"""Small statistics helpers: medians and spreads of repeated runs, latency percentiles.

Kept free of I/O so the report code and the workers agree on one definition of
"median" and "p99.9" (nearest-rank on the sorted samples).
"""

import statistics


def percentile(sorted_samples, pct):
    """Nearest-rank percentile of already sorted samples; None when there are none."""
    if not sorted_samples:
        return None
    rank = max(1, -(-len(sorted_samples) * pct // 100))  # ceil without floats
    return sorted_samples[min(len(sorted_samples), int(rank)) - 1]


class Repeated:
    """The values one figure took over the repeats of a measurement."""

    def __init__(self, values):
        self.values = [v for v in values if v is not None]

    @property
    def ok(self):
        return bool(self.values)

    @property
    def median(self):
        return statistics.median(self.values) if self.values else None

    @property
    def low(self):
        return min(self.values) if self.values else None

    @property
    def high(self):
        return max(self.values) if self.values else None

    def spread_pct(self):
        """(max - min) / median in percent: how noisy the repeats were."""
        m = self.median
        if not self.values or not m:
            return None
        return 100.0 * (self.high - self.low) / m
