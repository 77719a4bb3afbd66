"""Stats against textbook numbers."""

from __future__ import annotations

import math
from collections import deque

import pytest

from commitbench.fleet.worker import Tally
from commitbench.model.stats import Stats, median, median_ci_ranks, percentile


def test_summary_of_the_classic_sample() -> None:
    # The sample whose population standard deviation is 2 (Wikipedia, "Standard deviation").
    s = Stats.of([2, 4, 4, 4, 5, 5, 7, 9])
    assert s.n == 8
    assert s.mean == 5.0
    assert s.median == 4.5
    assert s.stddev == pytest.approx(math.sqrt(32 / 7))
    assert (s.min, s.max) == (2.0, 9.0)


def test_percentiles_interpolate_like_numpy_type_7() -> None:
    s = Stats.of(range(1, 11))
    # numpy.percentile(range(1, 11), [5, 25, 75, 95]) = 1.45, 3.25, 7.75, 9.55
    assert s.p5 == pytest.approx(1.45)
    assert s.p95 == pytest.approx(9.55)
    assert s.iqr == pytest.approx(7.75 - 3.25)
    assert percentile([7.0], 50) == 7.0


@pytest.mark.parametrize(
    ("n", "ranks"),
    # Conover, Practical Nonparametric Statistics, table A3 (95%, two-sided).
    [(5, None), (6, (1, 6)), (10, (2, 9)), (20, (6, 15)), (30, (10, 21)), (100, (40, 61))],
)
def test_order_statistic_ranks_of_the_median_ci(n: int, ranks: tuple[int, int] | None) -> None:
    assert median_ci_ranks(n) == ranks


def test_ranks_are_the_tightest_with_95_percent_coverage() -> None:
    for n in (6, 11, 57, 400):
        ranks = median_ci_ranks(n)
        assert ranks is not None
        k = ranks[0]

        def coverage(k: int, n: int = n) -> float:
            return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n

        assert coverage(k) >= 0.95
        assert coverage(k + 1) < 0.95


def test_ranks_for_many_samples_do_not_overflow() -> None:
    ranks = median_ci_ranks(10_000)
    assert ranks is not None
    assert ranks[0] + ranks[1] == 10_001
    assert 4890 < ranks[0] < 4910  # n/2 - 1.96 sqrt(n)/2 = 4902


def test_median_ci_picks_those_order_statistics() -> None:
    s = Stats.of([10, 1, 9, 2, 8, 3, 7, 4, 6, 5])
    assert s.median_ci == (2.0, 9.0)
    assert Stats.of([1, 2, 3]).median_ci is None


def test_a_single_sample_has_no_stddev_and_nan_is_refused() -> None:
    assert Stats.of([3.0]).stddev is None
    with pytest.raises(ValueError):
        Stats.of([1.0, math.nan])
    with pytest.raises(ValueError):
        Stats.of([])


def test_every_percentile_is_the_same_type_7_percentile() -> None:
    """One definition (model/stats.py): the analysis's median, a bench's p95 and the
    fleet's claim latency percentiles agree with numpy's default on the same values."""
    values = [float(v) for v in range(20, 0, -1)]  # 20 .. 1, unsorted
    assert median(values) == 10.5
    assert Stats.of(values).p95 == 19.05  # numpy.percentile(range(1, 21), 95)
    tally = Tally(claim_s=deque(v / 1000 for v in values))
    summary = tally.summary()
    assert (summary["claim_p50_ms"], summary["claim_p95_ms"]) == (10.5, 19.05)
