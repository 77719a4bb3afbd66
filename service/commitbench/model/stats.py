"""Stats: the summary of a metric's raw samples, as an immutable value.

Percentiles interpolate linearly between order statistics (Hyndman & Fan 1996, type 7,
the default of numpy and R; PostgreSQL's `percentile_cont` computes the same). This is
the one definition of a percentile and a median in commitbench: benches (`Timing.stats`),
the analysis, the fleet's latency figures and the dashboards' SQL all use it.

The 95% confidence interval of the median is the exact distribution-free interval from
order statistics: with B ~ Binomial(n, 1/2), the interval [x_(k), x_(n-k+1)] covers the
median with probability 1 - 2 P(B <= k-1); k is the largest rank that keeps that >= 95%
(Conover, Practical Nonparametric Statistics, 3rd ed., 3.2). It needs n >= 6; for fewer
samples no interval is claimed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

CONFIDENCE = 0.95


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (k, n-k+1) of the exact order-statistic interval for the median."""
    if n < 1:
        return None
    alpha_half = (1.0 - confidence) / 2.0
    # Integer arithmetic: 2.0**n overflows a float beyond n = 1023 repeats.
    total = 2**n
    term = 1  # comb(n, i)
    cum = 0
    k = 0
    # Largest k with P(B <= k-1) <= alpha/2.
    for i in range(n + 1):
        cum += term
        if cum / total > alpha_half:
            break
        k = i + 1
        term = term * (n - i) // (i + 1)
    if k < 1:
        return None
    return k, n - k + 1


def midranks(xs: Sequence[float]) -> tuple[list[float], float]:
    """1-based ranks, ties sharing their mean rank, and the tie term sum(t^3 - t), as
    rank tests need them (Lehmann, Nonparametrics, 1975, 1.4)."""
    order = sorted(range(len(xs)), key=xs.__getitem__)
    ranks = [0.0] * len(xs)
    ties = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        mean_rank = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = mean_rank
        t = j - i + 1
        ties += t * t * t - t
        i = j + 1
    return ranks, ties


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (type 7); `ordered` must be sorted."""
    if not ordered:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} outside [0, 100]")
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """The median of unsorted values (`percentile` at 50)."""
    return percentile(sorted(values), 50.0)


@dataclass(frozen=True)
class Stats:
    """Summary statistics of raw samples; every statistic is computed once, on first use."""

    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("Stats needs at least one sample")
        if any(math.isnan(s) for s in self.samples):
            raise ValueError("Stats samples contain NaN")

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        return cls(tuple(float(s) for s in samples))

    @cached_property
    def ordered(self) -> tuple[float, ...]:
        return tuple(sorted(self.samples))

    @property
    def n(self) -> int:
        return len(self.samples)

    @cached_property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @cached_property
    def median(self) -> float:
        return percentile(self.ordered, 50.0)

    @cached_property
    def stddev(self) -> float | None:
        """Sample standard deviation (n - 1); undefined for a single sample."""
        return statistics.stdev(self.samples) if self.n > 1 else None

    @property
    def min(self) -> float:
        return self.ordered[0]

    @property
    def max(self) -> float:
        return self.ordered[-1]

    @cached_property
    def p5(self) -> float:
        return percentile(self.ordered, 5.0)

    @cached_property
    def p95(self) -> float:
        return percentile(self.ordered, 95.0)

    @cached_property
    def iqr(self) -> float:
        return percentile(self.ordered, 75.0) - percentile(self.ordered, 25.0)

    @cached_property
    def median_ci(self) -> tuple[float, float] | None:
        ranks = median_ci_ranks(self.n)
        if ranks is None:
            return None
        lo, hi = ranks
        return self.ordered[lo - 1], self.ordered[hi - 1]
