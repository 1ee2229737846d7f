"""Latency statistics: a log-bucketed histogram, percentiles, summaries.

Theory of operation
-------------------
A load run produces one latency per request, hundreds of thousands of them,
in several processes. Keeping every sample and sorting is exact but heavy to
ship between processes; a *histogram with log-spaced buckets* is small, adds
up across processes by adding counts, and still answers every question the
course asks (percentiles, the CDF, the shape of the distribution) with a
bounded relative error.

Buckets: bucket ``i`` holds latencies in ``[LOW * G**i, LOW * G**(i+1))``
with ``G = 10 ** (1 / BUCKETS_PER_DECADE)``. Equal width on a log scale means
equal *relative* precision: a 20 µs reply and a 2 s stall are both known to
within the same few percent. Values below LOW go in bucket 0, values above
HIGH in the last bucket; the exact minimum, maximum and sum are kept
alongside, so ``max`` and ``mean`` are exact.

Percentile rule (nearest rank): the q-th percentile is the smallest recorded
value v such that at least q % of the samples are <= v. From the histogram we
find the bucket holding that rank and report the geometric middle of the
bucket, clamped to the exact [min, max]: off by at most half a bucket,
``RELATIVE_ERROR``.

Only the standard library is used; plotting lives in netserv.measure.plot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["PERCENTILES", "RELATIVE_ERROR", "Histogram", "bucket_bounds", "bucket_of", "summarize"]

#: Smallest latency told apart (seconds): loopback round trips are ~10 µs;
#: below 1 µs the clock itself is the noise.
LOW = 1e-6
#: Largest latency told apart (seconds): far beyond any bounded run.
HIGH = 1000.0
#: Buckets per factor of ten: 100 gives ~2.3 % wide buckets, so a reported
#: percentile is within ~1.2 % of the true sample, far below run-to-run noise.
BUCKETS_PER_DECADE = 100
_GROWTH = 10 ** (1 / BUCKETS_PER_DECADE)
_BUCKETS = round(math.log10(HIGH / LOW) * BUCKETS_PER_DECADE)
#: Worst-case relative error of a percentile read from the histogram.
RELATIVE_ERROR = math.sqrt(_GROWTH) - 1

#: The percentiles every summary reports: name -> q (in percent).
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def bucket_of(seconds: float) -> int:
    """Index of the bucket that holds a latency (clamped to the range)."""
    if seconds <= LOW:
        return 0
    index = int(math.log10(seconds / LOW) * BUCKETS_PER_DECADE)
    return min(index, _BUCKETS - 1)


def bucket_bounds(index: int) -> tuple[float, float]:
    """The [lower, upper) latency bounds of a bucket, in seconds."""
    return LOW * _GROWTH ** index, LOW * _GROWTH ** (index + 1)


class Histogram:
    """Latencies in log-spaced buckets, plus exact count, sum, min and max.

    Methods: record(seconds), merge(other), percentile(q), cdf(), summary(),
    to_dict()/from_dict() (plain data for JSON and for sending between
    processes). Not thread-safe: one histogram per thread or process, merged
    at the end. Memory: one dict entry per non-empty bucket (at most ~900).
    """

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def record(self, seconds: float) -> None:
        """Add one latency (seconds; negative clock noise counts as 0)."""
        seconds = max(seconds, 0.0)
        index = bucket_of(seconds)
        self.counts[index] = self.counts.get(index, 0) + 1
        self.count += 1
        self.total += seconds
        self.min = min(self.min, seconds)
        self.max = max(self.max, seconds)

    def merge(self, other: Histogram) -> None:
        """Add another histogram's samples to this one."""
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def percentile(self, q: float) -> float:
        """The q-th percentile (0 < q <= 100) in seconds; NaN when empty."""
        if not 0 < q <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {q}")
        if not self.count:
            return math.nan
        rank = math.ceil(q / 100 * self.count)  # nearest rank, 1-based
        if rank >= self.count:
            return self.max  # the largest sample, known exactly
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                low, high = bucket_bounds(index)
                middle = math.sqrt(low * high)
                return min(max(middle, self.min), self.max)
        return self.max  # pragma: no cover - rank <= count always stops above

    def cdf(self) -> list[tuple[float, float]]:
        """(upper bound of bucket in seconds, fraction of samples <= it), non-empty buckets."""
        points = []
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            points.append((min(bucket_bounds(index)[1], self.max), seen / self.count))
        return points

    def summary(self) -> dict[str, float]:
        """Percentiles, max and mean in milliseconds (NaN when empty)."""
        figures = {name: self.percentile(q) * 1e3 for name, q in PERCENTILES.items()}
        figures["max"] = self.max * 1e3 if self.count else math.nan
        figures["mean"] = self.mean * 1e3
        return figures

    def to_dict(self) -> dict[str, Any]:
        """Plain data: bucket counts keyed by index, and the exact figures."""
        return {"buckets_per_decade": BUCKETS_PER_DECADE, "low_s": LOW,
                "counts": {str(i): n for i, n in sorted(self.counts.items())},
                "count": self.count, "sum_s": self.total,
                "min_s": self.min if self.count else None, "max_s": self.max}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        """Rebuild a histogram saved by to_dict(); refuses another bucket layout."""
        if (data.get("buckets_per_decade") != BUCKETS_PER_DECADE
                or data.get("low_s") != LOW):
            raise ValueError("histogram saved with another bucket layout")
        hist = cls()
        hist.counts = {int(i): int(n) for i, n in data["counts"].items()}
        hist.count = int(data["count"])
        hist.total = float(data["sum_s"])
        hist.min = math.inf if data["min_s"] is None else float(data["min_s"])
        hist.max = float(data["max_s"])
        return hist

    @classmethod
    def of(cls, samples: Iterable[float]) -> Histogram:
        """A histogram of the given latencies (seconds)."""
        hist = cls()
        for seconds in samples:
            hist.record(seconds)
        return hist


def summarize(samples: Iterable[float]) -> dict[str, float]:
    """Percentiles, max and mean (milliseconds) of latencies given in seconds."""
    return Histogram.of(samples).summary()
