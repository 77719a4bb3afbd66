"""Pairwise comparison against reference values and constructed cases."""

from __future__ import annotations

import random

import pytest

from commitbench.analysis.compare import Policies, Policy, compare, mann_whitney_p

# Reference p-values from scipy.stats.mannwhitneyu(a, b, alternative="two-sided",
# use_continuity=True, method="asymptotic"), scipy 1.17.
SCIPY = [
    ([1.1, 2.2, 3.1, 4.5, 5.0, 6.2, 7.7], [3.3, 4.4, 5.5, 8.1, 9.9, 10.2], 0.13361440253771614),
    ([1, 1, 2, 2, 3, 3, 4], [2, 3, 3, 4, 5, 5, 6, 6], 0.025414962900292104),  # ties
    ([10.0] * 5, [10.0] * 6, 1.0),
]


@pytest.mark.parametrize(("a", "b", "expected"), SCIPY)
def test_mann_whitney_matches_scipy(a: list[float], b: list[float], expected: float) -> None:
    assert mann_whitney_p(a, b) == pytest.approx(expected, rel=1e-12)


def test_mann_whitney_needs_three_samples_a_side() -> None:
    assert mann_whitney_p([1.0, 2.0], [3.0, 4.0, 5.0]) is None


def normal(seed: int, mean: float, cv: float, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, mean * cv) for _ in range(n)]


def test_ten_percent_slower_is_a_regression() -> None:
    base, head = normal(1, 1.0, 0.02, 30), normal(2, 1.10, 0.02, 30)
    c = compare(base, head, direction="lower")
    assert c.verdict == "regressed"
    assert c.ratio == pytest.approx(1.10, abs=0.02)
    assert c.ci_low is not None and c.ci_high is not None
    assert 1.0 < c.ci_low < c.ratio < c.ci_high
    assert c.p_value is not None and c.p_value < 1e-9


def test_direction_decides_regression_or_improvement() -> None:
    base, head = normal(3, 100.0, 0.02, 30), normal(4, 110.0, 0.02, 30)
    assert compare(base, head, direction="higher").verdict == "improved"  # e.g. TFLOP/s
    assert compare(head, base, direction="higher").verdict == "regressed"
    assert compare(head, base, direction="lower").verdict == "improved"


def test_below_the_minimum_effect_is_unchanged_even_when_significant() -> None:
    base, head = normal(5, 1.0, 0.005, 200), normal(6, 1.02, 0.005, 200)
    c = compare(base, head, direction="lower")
    assert c.p_value is not None and c.p_value < 1e-9  # real, but 2% < 5%
    assert c.verdict == "unchanged"
    assert compare(base, head, direction="lower", policy=Policy.parse("median:1%")).verdict == (
        "regressed"
    )


def test_a_big_change_the_samples_do_not_support_is_noisy() -> None:
    base = [1.0, 1.5, 0.7, 1.3, 0.8, 1.2]
    head = [1.1, 1.6, 0.8, 1.4, 0.9, 1.25]
    c = compare(base, head, direction="lower")
    assert c.change > 0.05
    assert c.verdict == "noisy"


def test_policy_strings() -> None:
    assert Policy.parse("median:5%") == Policy("median", 0.05)
    assert Policy.parse(" mean : 12.5 % ") == Policy("mean", 0.125)
    assert str(Policy.parse("min:3%")) == "min:3%"
    for bad in ("median", "p99:5%", "median:-1%", "median:5"):
        with pytest.raises(ValueError, match="is not like median:5%"):
            Policy.parse(bad)


def test_per_case_overrides_last_match_wins() -> None:
    p = Policies.parse("median:5%", {"matmul.*": "median:3%", "matmul.*int8*": "mean:10%"})
    assert p.for_case("attention.sdpa[d=64]") == Policy("median", 0.05)
    assert p.for_case("matmul.matmul[impl=fp16]") == Policy("median", 0.03)
    assert p.for_case("matmul.matmul[impl=int8]") == Policy("mean", 0.10)


def test_mean_and_min_statistics() -> None:
    base, head = [1.0, 1.0, 1.0, 4.0], [1.2, 1.2, 1.2, 1.2]
    assert compare(base, head, direction="lower", policy=Policy("mean", 0.05)).ratio == 1.2 / 1.75
    assert compare(base, head, direction="lower", policy=Policy("min", 0.05)).ratio == 1.2
