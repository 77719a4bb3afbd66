"""Pairwise comparison of two sets of raw samples: ratio, its interval, a rank test, and
a verdict under a minimum-effect policy.

- Ratio: head statistic / base statistic (median by default).
- Interval (median only): from the two medians' exact distribution-free 95% intervals
  (stats.Stats.median_ci): [head_lo / base_hi, head_hi / base_lo]. Conservative: by
  Bonferroni the pair covers both medians with probability >= 90%, and the ratio interval
  contains every ratio those intervals allow.
- p-value: two-sided Mann-Whitney U on the raw samples with average ranks for ties, the
  tie-corrected normal approximation and a continuity correction (Lehmann,
  Nonparametrics, 1975, ch. 1). It needs no shape assumption, which suits timings (skewed,
  often bimodal); with fewer than 3 samples on a side there is no test.
- Verdict: `unchanged` when the change is below the policy's minimum effect; else
  `regressed`/`improved` (by the metric's direction) when the test is significant
  (p < alpha) and, for medians, the interval excludes 1; else `noisy` (a large change
  the samples do not support).

Two commits (`compare_commits`, for `compare` and the report): base and head are commit
values (model.points.SeriesPoint: the median of the medians of every ok result of the
commit). With one result on each side, the interval and the p-value are the ones above,
from that result's samples. With several results on a side there is no rank test over
results of different runs yet (issue 13's two-level model): the interval is the ratio
of the commit values' intervals, each the span of its results' intervals (wider than any
one of them), and the verdict rests on that interval alone.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from commitbench.model.points import Point, SeriesPoint
from commitbench.model.records import case_matches
from commitbench.model.stats import Stats, midranks

STATISTICS = ("median", "mean", "min")
VERDICTS = ("regressed", "improved", "unchanged", "noisy")
DEFAULT_ALPHA = 0.01
_POLICY = re.compile(r"^\s*(median|mean|min)\s*:\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True)
class Policy:
    """How big a change must be to count, on which statistic: parsed from `median:5%`."""

    statistic: str = "median"
    threshold: float = 0.05

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(f"statistic {self.statistic!r} is not one of {STATISTICS}")
        if not 0 <= self.threshold < 10:
            raise ValueError("threshold must be a fraction in [0, 10)")

    @classmethod
    def parse(cls, text: str) -> Policy:
        found = _POLICY.match(text)
        if found is None:
            raise ValueError(f"policy {text!r} is not like median:5% (median, mean or min)")
        return cls(found.group(1), float(found.group(2)) / 100)

    def __str__(self) -> str:
        return f"{self.statistic}:{self.threshold * 100:g}%"


@dataclass(frozen=True)
class Policies:
    """A default policy and per-case overrides by pattern (records.case_matches: a glob,
    or a substring; the last match wins)."""

    default: Policy = Policy()
    overrides: tuple[tuple[str, Policy], ...] = ()

    @classmethod
    def parse(cls, default: str | None, overrides: Mapping[str, str] | None = None) -> Policies:
        return cls(
            Policy.parse(default) if default else Policy(),
            tuple((pattern, Policy.parse(p)) for pattern, p in (overrides or {}).items()),
        )

    def for_case(self, label: str) -> Policy:
        chosen = self.default
        for pattern, policy in self.overrides:
            if case_matches(label, pattern):
                chosen = policy
        return chosen


@dataclass(frozen=True)
class Comparison:
    base: float
    head: float
    ratio: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    verdict: str
    policy: Policy

    @property
    def change(self) -> float:
        return self.ratio - 1.0


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, see above)."""
    n, m = len(a), len(b)
    if n < 3 or m < 3:
        return None
    ranks, ties = midranks([*a, *b])
    u = sum(ranks[:n]) - n * (n + 1) / 2
    mean = n * m / 2
    total = n + m
    var = n * m / 12 * ((total + 1) - ties / (total * (total - 1)))
    if var <= 0:
        return 1.0  # every value equal
    z = (abs(u - mean) - 0.5) / math.sqrt(var)
    return min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))


def _statistic(samples: Sequence[float], name: str) -> float:
    if name == "median":
        return Stats.of(samples).median
    if name == "mean":
        return statistics.fmean(samples)
    return min(samples)


def compare(
    base: Sequence[float],
    head: Sequence[float],
    *,
    direction: str,
    policy: Policy = Policy(),
    alpha: float = DEFAULT_ALPHA,
) -> Comparison:
    """Compare raw samples of one metric at two commits (see the module docstring)."""
    if not base or not head:
        raise ValueError("compare needs samples on both sides")
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction {direction!r} is not lower or higher")
    b, h = _statistic(base, policy.statistic), _statistic(head, policy.statistic)
    lo = hi = None
    if policy.statistic == "median":
        lo, hi = ratio_interval(Stats.of(base).median_ci, Stats.of(head).median_ci)
    return _judged(b, h, lo, hi, mann_whitney_p(base, head), direction, policy, alpha)


def ratio_interval(
    base: tuple[float, float] | None, head: tuple[float, float] | None
) -> tuple[float | None, float | None]:
    """[head_lo / base_hi, head_hi / base_lo] from two intervals (see the module
    docstring); None where either is missing or the base's reaches zero."""
    if base is None or head is None or base[0] <= 0 or base[1] <= 0:
        return None, None
    return head[0] / base[1], head[1] / base[0]


def _judged(
    b: float,
    h: float,
    lo: float | None,
    hi: float | None,
    p: float | None,
    direction: str,
    policy: Policy,
    alpha: float,
) -> Comparison:
    ratio = h / b if b != 0 else (1.0 if h == 0 else math.inf)
    worse = ratio > 1 if direction == "lower" else ratio < 1
    excludes_one = lo is not None and hi is not None and (lo > 1 or hi < 1)
    if abs(ratio - 1) < policy.threshold:
        verdict = "unchanged"
    elif p is not None and p < alpha and (lo is None or hi is None or excludes_one):
        verdict = "regressed" if worse else "improved"
    elif p is None and excludes_one:
        verdict = "regressed" if worse else "improved"  # the interval alone decides
    else:
        verdict = "noisy"
    return Comparison(b, h, ratio, lo, hi, p, verdict, policy)


@dataclass(frozen=True)
class Sample:
    """The raw samples of one metric of one case at one commit on one machine/profile."""

    machine: str
    machine_label: str
    profile: str
    case: str
    metric: str
    unit: str
    direction: str
    samples: tuple[float, ...]


def samples_of(points: Sequence[Point]) -> list[Sample]:
    """The raw samples of each point, keyed as compare_sets pairs them."""
    return [
        Sample(
            p.machine, p.machine_label, p.profile, p.case, p.metric, p.unit, p.direction, p.samples
        )
        for p in points
    ]


@dataclass(frozen=True)
class Row:
    machine_label: str
    profile: str
    case: str
    metric: str
    unit: str
    direction: str
    n_base: int  # samples
    n_head: int
    comparison: Comparison
    runs_base: int = 1  # results (runs) behind the base value
    runs_head: int = 1


_ORDER = {"regressed": 0, "improved": 1, "noisy": 2, "unchanged": 3}


def compare_sets(
    base: Sequence[Sample],
    head: Sequence[Sample],
    policies: Policies = Policies(),
    *,
    alpha: float = DEFAULT_ALPHA,
) -> list[Row]:
    """Compare every (machine, profile, case, metric) present on both sides; samples of
    several runs of one commit are pooled. Worst first."""

    def pool(side: Sequence[Sample]) -> dict[tuple[str, str, str, str], list[Sample]]:
        out: dict[tuple[str, str, str, str], list[Sample]] = {}
        for s in side:
            out.setdefault((s.machine, s.profile, s.case, s.metric), []).append(s)
        return out

    before, after = pool(base), pool(head)
    rows = []
    for key in sorted(before.keys() & after.keys()):
        b = [x for s in before[key] for x in s.samples]
        h = [x for s in after[key] for x in s.samples]
        if not b or not h:
            continue
        first = after[key][0]
        c = compare(
            b, h, direction=first.direction, policy=policies.for_case(first.case), alpha=alpha
        )
        rows.append(
            Row(
                first.machine_label,
                first.profile,
                first.case,
                first.metric,
                first.unit,
                first.direction,
                len(b),
                len(h),
                c,
            )
        )
    rows.sort(key=lambda r: (_ORDER[r.comparison.verdict], -abs(r.comparison.change)))
    return rows


def compare_commits(
    base: Sequence[SeriesPoint],
    head: Sequence[SeriesPoint],
    results: Sequence[Point],
    policies: Policies = Policies(),
    *,
    alpha: float = DEFAULT_ALPHA,
) -> list[Row]:
    """Compare the commit values of every series measured at both commits (see the
    module docstring). `results` are the result-level points of both commits: the raw
    samples for the rank test and for mean or min policies. Worst first."""
    samples: dict[tuple[str, ...], list[tuple[float, ...]]] = {}
    for p in results:
        if p.median is not None and p.samples:
            at = (p.sha, p.machine, p.profile, p.case, p.metric, p.unit, p.direction)
            samples.setdefault(at, []).append(p.samples)
    before = {_of(p): p for p in base}
    after = {_of(p): p for p in head}
    rows = []
    for key in sorted(before.keys() & after.keys()):
        b, h = before[key], after[key]
        policy = policies.for_case(h.case)
        bs, hs = samples.get((b.sha, *key), []), samples.get((h.sha, *key), [])
        single = b.runs == 1 and h.runs == 1 and len(bs) == 1 and len(hs) == 1
        p_value = mann_whitney_p(bs[0], hs[0]) if single else None
        if policy.statistic == "median":
            bv, hv = b.value, h.value
            lo, hi = ratio_interval(_interval(b), _interval(h))
        elif bs and hs:
            # The same shape as the value: the median over results of each one's statistic.
            bv = Stats.of([_statistic(x, policy.statistic) for x in bs]).median
            hv = Stats.of([_statistic(x, policy.statistic) for x in hs]).median
            lo = hi = None
        else:
            continue  # no raw samples kept: only the median is known
        c = _judged(bv, hv, lo, hi, p_value, h.direction, policy, alpha)
        rows.append(
            Row(
                h.machine_label,
                h.profile,
                h.case,
                h.metric,
                h.unit,
                h.direction,
                b.n,
                h.n,
                c,
                b.runs,
                h.runs,
            )
        )
    rows.sort(key=lambda r: (_ORDER[r.comparison.verdict], -abs(r.comparison.change)))
    return rows


def _of(p: SeriesPoint) -> tuple[str, str, str, str, str, str]:
    return (p.machine, p.profile, p.case, p.metric, p.unit, p.direction)


def _interval(p: SeriesPoint) -> tuple[float, float] | None:
    return None if p.ci_low is None or p.ci_high is None else (p.ci_low, p.ci_high)
