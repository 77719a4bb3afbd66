"""Series of commit values: lines of history for detect, and the pairwise comparison of
two commits' values (pure functions over constructed points)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from commitbench.analysis.series import build, lines
from commitbench.model.points import SeriesPoint

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
