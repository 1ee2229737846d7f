"""netserv.measure.stats.Histogram against a reference computed by sorting the samples."""

from __future__ import annotations

import math
import random

import pytest

from netserv.measure.stats import PERCENTILES, RELATIVE_ERROR, Histogram, summarize


def nearest_rank(samples: list[float], q: float) -> float:
    """The reference: sort, take the ceil(q% * n)-th smallest."""
    ordered = sorted(samples)
    return ordered[math.ceil(q / 100 * len(ordered)) - 1]


def lognormal_samples(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(200e-6), 1.0) for _ in range(n)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_match_sorted_reference_within_bucket_error(seed: int) -> None:
    samples = lognormal_samples(20_000, seed)
    hist = Histogram.of(samples)
    for q in [1, 10, 50, 90, 99, 99.9, 100]:
        expected = nearest_rank(samples, q)
        assert hist.percentile(q) == pytest.approx(expected, rel=RELATIVE_ERROR * 1.01), q


def test_exact_count_mean_min_max() -> None:
    samples = lognormal_samples(5000, 4)
    hist = Histogram.of(samples)
    assert hist.count == len(samples)
    assert hist.mean == pytest.approx(sum(samples) / len(samples))
    assert hist.min == min(samples) and hist.max == max(samples)
    assert hist.percentile(100) == max(samples)


def test_bimodal_mean_is_far_from_every_percentile_that_matters() -> None:
    # 98 % fast (1 ms), 2 % slow (1 s): the mean (~21 ms) describes nobody.
    samples = [1e-3] * 980 + [1.0] * 20
    figures = summarize(samples)
    assert figures["p50"] == pytest.approx(1.0, rel=RELATIVE_ERROR * 1.01)
    assert figures["p99"] == pytest.approx(1000.0, rel=RELATIVE_ERROR * 1.01)
    assert figures["p50"] < figures["mean"] / 10 and figures["mean"] < figures["p99"] / 10


def test_merge_equals_histogram_of_all_samples() -> None:
    a, b = lognormal_samples(3000, 5), lognormal_samples(4000, 6)
    merged = Histogram.of(a)
    merged.merge(Histogram.of(b))
    whole = Histogram.of(a + b)
    assert merged.counts == whole.counts
    assert merged.count == whole.count and merged.max == whole.max and merged.min == whole.min
    for q in PERCENTILES.values():
        assert merged.percentile(q) == whole.percentile(q)


def test_round_trip_through_plain_data() -> None:
    hist = Histogram.of(lognormal_samples(1000, 7))
    again = Histogram.from_dict(hist.to_dict())
    assert again.counts == hist.counts and again.summary() == hist.summary()


def test_cdf_rises_to_one_and_matches_reference_fraction() -> None:
    samples = lognormal_samples(10_000, 8)
    points = Histogram.of(samples).cdf()
    fractions = [f for _, f in points]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    bound, fraction = points[len(points) // 2]
    assert fraction == sum(s < bound for s in samples) / len(samples) or \
        fraction == sum(s <= bound for s in samples) / len(samples)


def test_empty_and_out_of_range() -> None:
    hist = Histogram()
    assert math.isnan(hist.percentile(50)) and math.isnan(hist.summary()["max"])
    with pytest.raises(ValueError):
        hist.percentile(0)
    hist.record(-1e-9)  # clock noise: counted as zero
    hist.record(5000.0)  # beyond the last bucket: clamped, max stays exact
    assert hist.count == 2 and hist.max == 5000.0 and hist.percentile(100) == 5000.0
    with pytest.raises(ValueError):
        Histogram.from_dict(hist.to_dict() | {"buckets_per_decade": 10})
