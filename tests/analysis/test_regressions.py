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
