"""Change points on seeded synthetic series with known truth: exact expected indexes."""

from __future__ import annotations

import math
import random

import pytest

from commitbench.analysis.changepoints import ChangePoint, detect, midranks, rank_sum_z


def series(
    seed: int,
    n: int,
    steps: dict[int, float],
    cv: float,
    *,
    outliers: float = 0.0,
    modes: tuple[float, ...] = (1.0,),
) -> list[float]:
    """100 * level * mode * (1 + cv N(0, 1)); ``steps`` maps a first index to its new level.

    Each point picks one of ``modes`` at random (bimodal noise) and is an outlier of +30%
    with probability ``outliers``.
    """
    rng = random.Random(seed)
    level = 1.0
    out = []
    for i in range(n):
        level = steps.get(i, level)
        x = 100.0 * level * rng.choice(modes) * (1.0 + cv * rng.gauss(0.0, 1.0))
        if rng.random() < outliers:
            x *= 1.3
        out.append(x)
    return out


def indexes(points: list[ChangePoint]) -> list[int]:
    return [p.index for p in points]


@pytest.mark.parametrize(
    ("seed", "step", "cv", "tau", "expected"),
    [
        (1, 1.02, 0.01, 120, 120),  # 2% step, 2 noise standard deviations
        (2, 1.05, 0.01, 37, 37),
        # Noise blurs steps of 2.5 and 2 standard deviations: values[150:152] are 98.7 and
        # 97.6, the old level of 100 as much as the new one of 95, so the data say 152;
        # values[99] is 105.9, the new level of 110 as much as the old one.
        (3, 0.95, 0.02, 150, 152),
        (5, 1.10, 0.05, 100, 99),
        (4, 1.10, 0.03, 88, 88),
        (6, 1.20, 0.05, 63, 63),
        (7, 0.80, 0.05, 171, 171),
    ],
)
def test_one_step_is_found_at_its_index(
    seed: int, step: float, cv: float, tau: int, expected: int
) -> None:
    values = series(seed, 200, {tau: step}, cv)
    found = detect(values, min_effect=0.01)
    assert indexes(found) == [expected]
    assert found[0].change == pytest.approx(step - 1.0, abs=cv)
    assert found[0].p_value <= 0.001


def test_levels_and_change_are_consistent() -> None:
    (point,) = detect(series(11, 200, {100: 1.10}, 0.02))
    assert point.before == pytest.approx(100.0, rel=0.01)
    assert point.after == pytest.approx(110.0, rel=0.01)
    assert point.change == pytest.approx(point.after / point.before - 1.0)


def test_two_steps_are_both_found() -> None:
    values = series(12, 200, {60: 1.10, 140: 1.10 * 0.92}, 0.02)
    assert indexes(detect(values)) == [60, 140]


def test_a_temporary_regression_of_20_commits_is_found_at_both_ends() -> None:
    # Binary segmentation over the whole series misses a short bump; the windows do not.
    values = series(13, 200, {90: 1.08, 110: 1.0}, 0.02)
    found = detect(values)
    # values[90] is 103.9, half-way between the levels 100 and 108: the data say 91.
    assert round(values[90], 1) == 103.9
    assert indexes(found) == [91, 110]
    assert found[0].change > 0.05 > 0.0 > -0.05 > found[1].change


def test_constant_series_has_no_change_point() -> None:
    assert detect([3.5] * 200, min_effect=0.0) == []


def test_series_shorter_than_two_regimes_has_no_change_point() -> None:
    assert detect([1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]) == []


def test_short_series_with_a_step_is_not_significant_yet() -> None:
    # Six points against six cannot reach p <= 0.001 with a rank test, however large the step.
    assert detect([100.0 + i % 3 for i in range(6)] + [200.0 + i % 3 for i in range(6)]) == []


def test_single_outlier_is_not_a_change_point() -> None:
    values = series(14, 200, {}, 0.02)
    values[100] *= 1.3
    assert detect(values, min_effect=0.0) == []


def test_a_burst_of_outliers_shorter_than_min_size_is_not_a_change_point() -> None:
    values = series(15, 200, {}, 0.02)
    for i in range(100, 104):
        values[i] *= 1.3
    assert detect(values, min_effect=0.0) == []


@pytest.mark.parametrize("seed", range(16, 28))
def test_two_percent_outliers_of_30_percent_neither_hide_nor_fake_nor_move_a_step(
    seed: int,
) -> None:
    clean = series(seed, 200, {130: 1.05}, 0.02)
    flat, stepped = series(seed, 200, {}, 0.02), list(clean)
    for i in random.Random(seed).sample(range(200), 4):  # exactly 2% of the points
        flat[i] *= 1.3
        stepped[i] *= 1.3
    assert detect(flat, min_effect=0.0) == []
    # Noise blurs the step from 100 to 105 by one point in two seeds, outliers or not:
    # values[129] is 103.9 with seed 16, values[130] is 101.7 with seed 27.
    expected = {16: 129, 27: 131}.get(seed, 130)
    assert indexes(detect(clean, min_effect=0.0)) == [expected]
    assert indexes(detect(stepped, min_effect=0.0)) == [expected]


def test_bimodal_noise_is_not_a_change_point() -> None:
    # Every point at one of two levels 4% apart, at random: twice the noise CV of 1%.
    assert detect(series(17, 200, {}, 0.01, modes=(1.0, 1.04)), min_effect=0.0) == []


def test_step_under_bimodal_noise_is_found_with_its_size() -> None:
    values = series(18, 200, {75: 1.10}, 0.01, modes=(1.0, 1.04))
    (point,) = detect(values)
    assert point.index == 75
    # Hodges-Lehmann shift: the mode mix does not move the estimate by a mode gap.
    assert point.change == pytest.approx(0.10, abs=0.01)


def test_min_effect_drops_significant_small_changes() -> None:
    values = series(19, 200, {100: 1.03}, 0.01)
    assert indexes(detect(values, min_effect=0.02)) == [100]
    assert detect(values) == []  # default min_effect 5%


def test_two_halves_of_one_step_merge_instead_of_both_falling_under_min_effect() -> None:
    # A staircase of two 3% steps 20 commits apart is one 6% change for a 5% minimum.
    values = series(20, 200, {100: 1.03, 120: 1.06}, 0.005)
    assert indexes(detect(values, min_effect=0.0)) == [100, 120]
    (point,) = detect(values, min_effect=0.05)
    # One split cannot fit a staircase: its L1 cost is nearly flat between the two stages,
    # and the noise puts the merged point at 101.
    assert point.index == 101
    assert point.change == pytest.approx(0.06, abs=0.01)


def test_decrease_has_negative_change() -> None:
    (point,) = detect(series(21, 200, {50: 0.90}, 0.02))
    assert point.index == 50
    assert point.change == pytest.approx(-0.10, abs=0.01)


@pytest.mark.slow
def test_10000_points_with_one_step_give_exactly_one_change_point() -> None:
    values = series(22, 10_000, {6_123: 1.05}, 0.02)
    assert indexes(detect(values, min_effect=0.0)) == [6_123]
    assert indexes(detect(values)) in ([], [6_123])  # the estimate is 5% +/- noise


def test_10000_points_without_a_step_give_none() -> None:
    assert detect(series(23, 10_000, {}, 0.02, outliers=0.02), min_effect=0.0) == []


@pytest.mark.parametrize(
    "values",
    [[1.0] * 50 + [math.nan] + [1.0] * 50, [1.0] * 50 + [math.inf]],
)
def test_nan_and_infinity_are_rejected(values: list[float]) -> None:
    with pytest.raises(ValueError, match="NaN or infinity"):
        detect(values)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"p_max": 0.0},
        {"p_max": 1.0},
        {"min_size": 1},
        {"window": 9},
        {"min_effect": -0.01},
        {"min_effect": math.nan},
    ],
)
def test_parameters_out_of_range_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        detect([1.0] * 100, **kwargs)  # type: ignore[arg-type]


def test_midranks_share_ties_and_count_them() -> None:
    ranks, ties = midranks([3.0, 1.0, 4.0, 1.0, 5.0, 1.0])
    assert ranks == [4.0, 2.0, 5.0, 2.0, 6.0, 2.0]
    assert ties == 3**3 - 3


def test_rank_sum_z_against_the_textbook_formula() -> None:
    # 1..4 against 5..8: W = 10, E = 18, Var = 4 * 4 * 9 / 12 = 12.
    assert rank_sum_z([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 4) == pytest.approx(8 / 12**0.5)
    assert rank_sum_z([8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0], 4) == pytest.approx(-8 / 12**0.5)
    assert rank_sum_z([2.0] * 8, 4) == 0.0
