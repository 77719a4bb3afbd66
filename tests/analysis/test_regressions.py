"""Findings on seeded series with exact expected indexes."""

from __future__ import annotations

import random

import pytest

from commitbench.analysis.regressions import findings


def series(levels: list[tuple[int, float]], seed: int, cv: float = 0.01) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(level, level * cv) for n, level in levels for _ in range(n)]


def test_a_slowdown_is_a_regression_and_a_speedup_an_improvement() -> None:
    values = series([(60, 1.0), (60, 1.1), (60, 0.9)], seed=1)
    got = findings(values, "lower")
    assert [(f.index, f.kind) for f in got] == [(60, "regression"), (120, "improvement")]
    assert got[0].change == pytest.approx(0.10, abs=0.01)
    assert got[0].fixed_by is None  # 0.9 is not back at 1.0 within 5%


def test_direction_higher_flips_the_kind() -> None:
    values = series([(60, 500.0), (60, 450.0)], seed=2)  # throughput dropped 10%
    assert [(f.index, f.kind) for f in findings(values, "higher")] == [(60, "regression")]


def test_an_undone_step_marks_the_regression_fixed() -> None:
    values = series([(60, 1.0), (60, 1.2), (60, 1.01)], seed=3)
    got = findings(values, "lower")
    assert [(f.index, f.kind, f.fixed_by) for f in got] == [
        (60, "regression", 120),
        (120, "improvement", None),
    ]


def test_below_the_minimum_effect_nothing_is_found() -> None:
    values = series([(80, 1.0), (80, 1.03)], seed=4, cv=0.005)
    assert findings(values, "lower") == []
    assert [f.index for f in findings(values, "lower", min_effect=0.02)] == [80]


def test_a_level_that_moves_with_the_load_is_contention_not_a_regression() -> None:
    """Commits 40-79 measured on a loaded machine (flagged): 30% slower, same code."""
    values = series([(40, 1.0), (40, 1.3), (40, 1.0)], seed=5)
    busy = [40 <= i < 80 for i in range(120)]
    got = findings(values, "lower", contended=busy)
    assert [(f.index, f.kind, f.contended) for f in got] == [
        (40, "contention", 40),
        (80, "contention", 40),
    ]
    unflagged = findings(values, "lower")  # without the machine's state: two steps
    assert [(f.index, f.kind) for f in unflagged] == [(40, "regression"), (80, "improvement")]


def test_a_series_flagged_at_every_commit_is_judged_on_its_values() -> None:
    """Flags at every commit (a bench that waits by itself, a machine always loaded)
    cannot say where the level moved: the step is found as it would be without them."""
    values = series([(60, 1.0), (60, 1.1)], seed=6)
    got = findings(values, "lower", contended=[True] * 120)
    assert [(f.index, f.kind) for f in got] == [(60, "regression")]
    assert got == findings(values, "lower")


def test_a_real_step_among_contended_commits_is_still_found_on_the_clean_ones() -> None:
    values = series([(60, 1.0), (60, 1.1)], seed=6)
    busy = [i % 7 == 0 for i in range(120)]
    for i in range(0, 120, 7):
        values[i] *= 1.4  # those runs waited for the CPU
    got = findings(values, "lower", contended=busy)
    assert [(f.index, f.kind) for f in got] == [(60, "regression")]
    assert got[0].contended == sum(busy[10:110])


def test_a_step_within_the_between_run_noise_is_dropped() -> None:
    """A 6% step is significant over 150 commits on each side, but the commit values
    scatter by 8% from run to run: twice that is not reached."""
    values = series([(150, 1.0), (150, 1.06)], seed=7, cv=0.08)
    assert findings(values, "lower", window=150, p_max=0.01) == []
