"""Series of commit values: lines of history for detect, and the pairwise comparison of
two commits' values (pure functions over constructed points)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from commitbench.analysis.compare import Policies, Policy, compare, compare_commits
from commitbench.analysis.series import build, lines
from commitbench.model.points import Point, SeriesPoint, commit_values
from commitbench.model.stats import Stats

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
REPO = "https://example.com/acme/model.git"


def sha(i: int) -> str:
    return f"{i:040x}"


def point(
    i: int,
    parent: int | None,
    branches: tuple[str, ...],
    value: float = 1.0,
    *,
    runs: int = 1,
    case: str = "matmul.dense[shape=4k]",
) -> SeriesPoint:
    return SeriesPoint(
        repository=REPO,
        case=case,
        metric="time",
        machine="f" * 64,
        machine_label="NVIDIA H100 80GB HBM3",
        profile="full",
        unit="s",
        direction="lower",
        sha=sha(i),
        first_parent=None if parent is None else sha(parent),
        committed_at=T0 + timedelta(hours=i),
        subject=f"commit {i}",
        measured_at=T0 + timedelta(hours=i, minutes=5),
        value=value,
        ci_low=value * 0.99,
        ci_high=value * 1.01,
        runs=runs,
        n=10 * runs,
        branches=branches,
    )


def test_a_branchless_backfill_joins_the_branch_that_follows_it() -> None:
    """1-3 backfilled without a branch, 4-6 nightly on main, 7 a feature commit on 6,
    8-9 a branchless range nothing of a branch leads into (an old release)."""
    points = [
        point(1, None, ()),
        point(2, 1, ()),
        point(3, 2, ()),
        point(4, 3, ("main",)),
        point(5, 4, ("main",)),
        point(6, 99, ("main",)),  # its parent was never measured
        point(7, 6, ("feature",)),
        point(8, None, ()),
        point(9, 8, ()),
    ]
    found = lines(points)
    assert {i: found[(REPO, sha(i))] for i in range(1, 10)} == {
        1: ("main",),
        2: ("main",),
        3: ("main",),
        4: ("main",),
        5: ("main",),
        6: ("main",),
        7: ("feature",),  # main's commits are not on the feature's line
        8: (None,),
        9: (None,),
    }
    series = build(points, by_line=True)
    assert [(s.branch, [int(x, 16) for x in s.shas]) for s in series] == [
        (None, [8, 9]),
        ("feature", [7]),
        ("main", [1, 2, 3, 4, 5, 6]),
    ]


def test_a_commit_on_two_branches_is_in_both_lines() -> None:
    points = [point(1, None, ()), point(2, 1, ("main", "release"))]
    assert lines(points)[(REPO, sha(1))] == ("main", "release")
    assert [s.branch for s in build(points, by_line=True)] == ["main", "release"]


def test_without_lines_a_series_is_every_commit_in_commit_order() -> None:
    points = [point(2, 1, ("main",), 2.0, runs=3), point(1, None, (), 1.0)]
    (s,) = build(points)
    assert (s.branch, s.shas, s.medians, s.runs) == (None, (sha(1), sha(2)), (1.0, 2.0), (1, 3))


def test_case_and_metric_selection() -> None:
    points = [point(1, None, (), case="matmul.dense[shape=4k]"), point(1, None, (), case="attn.x")]
    assert [s.case for s in build(points, case="matmul.*")] == ["matmul.dense[shape=4k]"]
    assert [s.case for s in build(points, case="attn")] == ["attn.x"]
    assert build(points, metrics=["tflops"]) == []


def raw(i: int, samples: list[float], run: int = 0) -> Point:
    stats = Stats.of(samples)
    ci = stats.median_ci
    return Point(
        repository=REPO,
        sha=sha(i),
        committed_at=T0 + timedelta(hours=i),
        subject=None,
        machine="f" * 64,
        machine_label="NVIDIA H100 80GB HBM3",
        branch="main",
        profile="full",
        run_id=None,
        run_started_at=T0 + timedelta(hours=i, minutes=run),
        case="matmul.dense[shape=4k]",
        metric="time",
        unit="s",
        direction="lower",
        median=stats.median,
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
        samples=tuple(samples),
        n=len(samples),
        first_parent=None,
    )


BASE = [1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99, 1.00, 1.00]
HEAD = [1.10, 1.11, 1.09, 1.12, 1.08, 1.10, 1.11, 1.09, 1.10, 1.10]


def test_one_run_a_side_compares_as_the_samples_do() -> None:
    """Today's interval and Mann-Whitney p-value, from that result's samples."""
    results = [raw(1, BASE), raw(2, HEAD)]
    values = commit_values(results)
    (row,) = compare_commits(values[:1], values[1:], results)
    assert row.comparison == compare(BASE, HEAD, direction="lower")
    assert (row.n_base, row.n_head, row.runs_base, row.runs_head) == (10, 10, 1, 1)


def test_several_runs_compare_commit_values_on_the_span_of_their_intervals() -> None:
    """Base measured three times: its value is the median of the three medians, its
    interval the span of theirs; no rank test across runs."""
    base_runs = [[x * f for x in BASE] for f in (0.98, 1.0, 1.03)]
    results = [raw(1, b, run=k) for k, b in enumerate(base_runs)] + [raw(2, HEAD)]
    values = commit_values(results)
    base, head = values[0], values[1]
    (row,) = compare_commits([base], [head], results)
    c = row.comparison
    assert c.base == Stats.of([Stats.of(b).median for b in base_runs]).median == base.value
    assert c.head == head.value
    assert c.ratio == head.value / base.value
    assert base.ci_low is not None and base.ci_high is not None
    assert head.ci_low is not None and head.ci_high is not None
    assert (c.ci_low, c.ci_high) == (head.ci_low / base.ci_high, head.ci_high / base.ci_low)
    assert c.p_value is None
    assert c.verdict == "regressed"  # the interval excludes 1 on its own
    assert (row.n_base, row.runs_base, row.runs_head) == (30, 3, 1)


def test_several_runs_with_overlapping_intervals_are_noisy() -> None:
    base_runs = [[x * f for x in BASE] for f in (0.9, 1.0, 1.2)]
    results = [raw(1, b, run=k) for k, b in enumerate(base_runs)] + [raw(2, HEAD)]
    values = commit_values(results)
    (row,) = compare_commits(values[:1], values[1:], results)
    assert row.comparison.verdict == "noisy"


def test_mean_policy_takes_each_runs_mean_then_the_median() -> None:
    base_runs = [[x * f for x in BASE] for f in (0.98, 1.0, 1.03)]
    results = [raw(1, b, run=k) for k, b in enumerate(base_runs)] + [raw(2, HEAD)]
    values = commit_values(results)
    policies = Policies(Policy("mean", 0.05))
    (row,) = compare_commits(values[:1], values[1:], results, policies)
    means = sorted(sum(b) / len(b) for b in base_runs)
    assert row.comparison.base == pytest.approx(means[1], rel=1e-15)
    assert row.comparison.head == pytest.approx(sum(HEAD) / len(HEAD), rel=1e-15)
