"""Change points in one series: windowed rank binary segmentation, then a merge step.

Method. The two passes of Apache Otava (formerly Hunter; Fleming et al., "Hunter: Using
Change Point Detection to Hunt for Performance Regressions", ICPE 2023,
https://doi.org/10.1145/3578244.3583719), with its E-divisive means statistic and Student
t-test replaced by the rank-sum statistic of Mann & Whitney (1947):

1. Split. The series is cut into windows of ``2 * window`` points, starting every
   ``window // 2`` points. Inside each window, binary segmentation (Vostrikova 1981) takes the
   split that maximises the standardised Wilcoxon-Mann-Whitney statistic |Z_k| (the
   nonparametric change point model of Ross & Adams, "Two nonparametric control charts for
   detecting arbitrary distribution changes", J. Quality Technology 44(2), 2012; and of
   Pettitt, Applied Statistics 28(2), 1979). It keeps the split when its two-sided normal
   p-value, Bonferroni-adjusted for the number of splits scanned, is at most ``10 * p_max``
   (Otava's relaxed first pass), and recurses into both halves. Candidates from overlapping
   windows closer than ``min_size`` to a stronger one are dropped.
2. Merge (Otava's merge step). Each candidate is tested against its neighbourhood: the points
   up to the previous and next candidates, at most ``window`` on each side. Its p-value is the
   rank-sum p-value there, Bonferroni-adjusted for the number of admissible splits of that
   neighbourhood (so a location chosen by a scan is not credited as if fixed in advance).
   While a candidate has p > ``p_max``, the weakest is removed and its neighbours re-tested;
   then, while one is surely below ``min_effect``, the smallest is removed the same way, so
   two halves of one step merge back into it instead of both falling under the minimum.
   "Surely below" means that even the far end of the shift's distribution-free 95% interval
   (Moses 1965) is under the minimum effect: a true 5% step whose estimate comes out at 4.8%
   is kept under a 5% minimum, a 3% step measured to +-0.8% is not. (Filtering on the point
   estimate alone drops about half of all steps of exactly the minimum size.)

Why ranks. A rank statistic does not see how far an outlier lies, so a +30% outlier weighs no
more than any point above the median; the t-test of Otava inflates its variance by the
outlier's square and moves its means. Ranks also need no normality (bimodal noise), and ties
are handled with midranks and the tie-corrected variance (Lehmann, Nonparametrics, 1975, 1.4).
The normal approximation of the rank-sum law is symmetric and has lighter tails than the
normal, so its tail p-values err on the conservative side for small segments.

Levels. ``before`` is the median of the neighbourhood before the change; the shift is the
Hodges-Lehmann estimator (the median of all after - before pairwise differences, Hodges &
Lehmann 1963), which stays consistent under bimodal noise where a difference of medians can
jump between modes; ``after = before + shift`` and ``change = shift / |before|``.

Limits.
- Levels are local: only ``window`` points on each side are compared, so a small step needs
  ``window`` to be large enough (a shift of d noise standard deviations needs roughly
  d * sqrt(window / 2) >= 5); a slow drift is not reported as a step, by design.
- A regime shorter than ``min_size`` points is not a change point (a spike is an outlier), and
  a step within about ``min_size + 3`` points of either end of the series is usually not yet
  significant; it is reported once enough points follow it.
- Changes of spread without a change of location are not detected.
- Points are assumed independent within a regime; strongly autocorrelated noise gives more
  false alarms than p_max suggests.
- Below ``2 * min_size`` points nothing is reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from commitbench.model.stats import median, midranks

# Otava's first pass accepts candidates at 10x the final threshold (otava.analysis).
FIRST_PASS_FACTOR = 10.0
# How far (points) the final localisation may move a change point found by the rank scan.
LOCAL_SEARCH = 10


@dataclass(frozen=True)
class ChangePoint:
    """A step in a series: ``index`` is the first point of the new regime."""

    index: int
    before: float  # median of the neighbourhood before the change
    after: float  # before + Hodges-Lehmann shift
    change: float  # shift / |before|: after / before - 1 for positive levels
    p_value: float  # Bonferroni-adjusted rank-sum p-value in the neighbourhood


def detect(
    values: Sequence[float],
    *,
    p_max: float = 0.001,
    window: int = 50,
    min_effect: float = 0.05,
    min_size: int = 5,
) -> list[ChangePoint]:
    """Change points of ``values`` (one series in commit order), sorted by index.

    ``p_max``: the largest accepted adjusted p-value. ``window``: points compared on each side
    of a change (and half the length of the scan windows). ``min_effect``: the minimum
    effect a reported step must plausibly reach (its shift's 95% interval; see Merge).
    ``min_size``: the shortest regime. Raises ValueError for NaN or infinite values and for
    parameters out of range. See the module docstring for the method.
    """
    if not 0.0 < p_max < 1.0:
        raise ValueError(f"p_max {p_max} outside (0, 1)")
    if min_size < 2:
        raise ValueError(f"min_size {min_size} below 2")
    if window < 2 * min_size:
        raise ValueError(f"window {window} below 2 * min_size ({2 * min_size})")
    if not min_effect >= 0.0:
        raise ValueError(f"min_effect {min_effect} below 0")
    xs = [float(v) for v in values]
    if not all(math.isfinite(x) for x in xs):
        raise ValueError("values contain NaN or infinity")
    if len(xs) < 2 * min_size:
        return []
    candidates = _split(xs, window, min(1.0, FIRST_PASS_FACTOR * p_max), min_size)
    return _merge(xs, candidates, window, p_max, min_effect, min_size)


def rank_sum_z(xs: Sequence[float], k: int) -> float:
    """Standardised rank sum of the first ``k`` points of ``xs`` against the rest.

    Positive when the points after ``k`` rank higher. 0.0 when every point is tied.
    """
    ranks, ties = midranks(xs)
    n = len(xs)
    variance = _variance_factor(n, ties) * k * (n - k)
    if variance <= 0.0:
        return 0.0
    return (k * (n + 1) / 2.0 - math.fsum(ranks[:k])) / math.sqrt(variance)


def _variance_factor(n: int, ties: float) -> float:
    # Var(W_k) = k (n - k) / 12 * (n + 1 - ties / (n (n - 1))).
    return (n + 1 - ties / (n * (n - 1))) / 12.0


def _two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def _best_split(seg: Sequence[float], min_size: int) -> tuple[int, float] | None:
    """The split k (min_size <= k <= n - min_size) with the largest |Z_k|, and that Z."""
    n = len(seg)
    if n < 2 * min_size:
        return None
    ranks, ties = midranks(seg)
    factor = _variance_factor(n, ties)
    if factor <= 0.0:
        return None
    half = (n + 1) / 2.0
    best_k, best_z = 0, 0.0
    head = 0.0
    for k in range(1, n - min_size + 1):
        head += ranks[k - 1]
        if k >= min_size:
            z = (k * half - head) / math.sqrt(factor * k * (n - k))
            if abs(z) > abs(best_z):
                best_k, best_z = k, z
    return (best_k, best_z) if best_k else None


def _split(xs: list[float], window: int, p_split: float, min_size: int) -> list[int]:
    """Candidate indexes from binary segmentation inside overlapping windows."""
    n = len(xs)
    found: dict[int, float] = {}  # index -> |Z| of its strongest detection
    length = min(2 * window, n)
    stride = max(1, window // 2)
    start = 0
    while True:
        stop = min(start + length, n)
        todo = [(start, stop)]
        while todo:
            lo, hi = todo.pop()
            best = _best_split(xs[lo:hi], min_size)
            if best is None:
                continue
            k, z = best
            splits = hi - lo - 2 * min_size + 1
            if _two_sided(z) * splits > p_split:
                continue
            found[lo + k] = max(found.get(lo + k, 0.0), abs(z))
            todo += [(lo, lo + k), (lo + k, hi)]
        if stop >= n:
            break
        start += stride
    # Overlapping windows report one step at nearby indexes: keep the strongest.
    kept: list[int] = []
    for index in sorted(found, key=lambda i: (-found[i], i)):
        if all(abs(index - other) >= min_size for other in kept):
            kept.append(index)
    return sorted(kept)


def _l1_split(xs: list[float], lo: int, hi: int, index: int, min_size: int) -> int:
    """The split near ``index`` minimising the absolute deviations from each side's median."""

    def cost(part: list[float]) -> float:
        m = median(part)
        return math.fsum(abs(x - m) for x in part)

    reach = LOCAL_SEARCH
    splits = range(max(lo + min_size, index - reach), min(hi - min_size, index + reach) + 1)
    return min(splits, key=lambda j: (cost(xs[lo:j]) + cost(xs[j:hi]), abs(j - index)))


@dataclass(frozen=True)
class _Test:
    p_value: float
    before: float
    after: float
    change: float
    reach: float  # the largest |change| the shift's 95% interval allows


# z of a two-sided 95% interval.
Z95 = 1.959963984540054


def _test(xs: list[float], lo: int, index: int, hi: int, window: int, min_size: int) -> _Test:
    """Rank-sum test and levels of ``index`` in xs[lo:hi], clipped to ``window`` each side."""
    lo = max(lo, index - window)
    hi = min(hi, index + window)
    left, right = xs[lo:index], xs[index:hi]
    z = rank_sum_z(left + right, len(left))
    splits = max(1, hi - lo - 2 * min_size + 1)
    p_value = min(1.0, _two_sided(z) * splits)
    before = median(left)
    diffs = sorted(b - a for a in left for b in right)
    shift = median(diffs)
    # Distribution-free 95% interval of the shift from the same pairwise differences
    # (Moses 1965; Hollander & Wolfe, Nonparametric Statistical Methods, 4.3).
    n, m = len(left), len(right)
    k = max(1, math.floor(n * m / 2 - Z95 * math.sqrt(n * m * (n + m + 1) / 12)))
    far = max(abs(diffs[k - 1]), abs(diffs[-k]))
    if before != 0.0:
        change, reach = shift / abs(before), far / abs(before)
    else:
        change = 0.0 if shift == 0.0 else math.copysign(math.inf, shift)
        reach = abs(change)
    return _Test(p_value, before, before + shift, change, reach)


def _merge(
    xs: list[float],
    indexes: list[int],
    window: int,
    p_max: float,
    min_effect: float,
    min_size: int,
) -> list[ChangePoint]:
    """Otava's merge step: drop the weakest candidate until every one passes, re-testing."""
    indexes = list(indexes)

    def test_at(i: int) -> _Test:
        lo = indexes[i - 1] if i > 0 else 0
        hi = indexes[i + 1] if i + 1 < len(indexes) else len(xs)
        return _test(xs, lo, indexes[i], hi, window, min_size)

    tests = [test_at(i) for i in range(len(indexes))]
    while tests:
        weakest = max(range(len(tests)), key=lambda i: (tests[i].p_value, -i))
        if tests[weakest].p_value <= p_max:
            weakest = min(range(len(tests)), key=lambda i: (tests[i].reach, i))
            if tests[weakest].reach >= min_effect:
                break
        del indexes[weakest], tests[weakest]
        # Removing a point widens both neighbours' segments: test them again.
        for i in (weakest - 1, weakest):
            if 0 <= i < len(tests):
                tests[i] = test_at(i)
    # Ranks localise a little worse than magnitudes: move each point to the split of least
    # absolute deviation from the two medians nearby (the L1 cost that asv's step detection
    # minimises), unless the moved point would no longer pass.
    for i in range(len(indexes)):
        lo = max(indexes[i - 1] if i > 0 else 0, indexes[i] - window)
        hi = min(indexes[i + 1] if i + 1 < len(indexes) else len(xs), indexes[i] + window)
        best = _l1_split(xs, lo, hi, indexes[i], min_size)
        if best != indexes[i]:
            old, indexes[i] = indexes[i], best
            moved = test_at(i)
            if moved.p_value <= p_max and moved.reach >= min_effect:
                tests[i] = moved
            else:
                indexes[i] = old
    return [
        ChangePoint(index=i, before=t.before, after=t.after, change=t.change, p_value=t.p_value)
        for i, t in zip(indexes, tests, strict=True)
    ]
