"""A commit's value, defined once: the SQL view series_points and model.points.commit_values
give the same numbers for the same runs, and those numbers are the definition's."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from commitbench.errors import CsvFormatError
from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.points import ANY, PointFilter, SeriesPoint
from commitbench.model.records import CommitInfo, ResultRecord, RunEnd, RunHeader, RunInfo
from commitbench.model.stats import Stats
from commitbench.store.csv import CsvStore
from commitbench.store.csvread import find_runs, read_header, read_run
from commitbench.store.sql import SqlStore
from tests import factories as f

REPO = "https://example.com/acme/model.git"
SHAS = [f"{i:040x}" for i in (1, 2, 3)]
MATMUL = CaseKey.of("matmul.matmul", {"shape": "4k"})
ADAM = CaseKey.of("optimizers.adamw", {"impl": "fused"})


def _commit(i: int) -> CommitInfo:
    return CommitInfo(
        repository=REPO,
        sha=SHAS[i],
        parents=(SHAS[i - 1],) if i else (),
        committed_at=f.T0 + timedelta(days=i),
        subject=f"commit {i}",
    )


def _run(
    i: int, hours: float, *, branch: str | None, trigger: str, profile: str = "full"
) -> RunHeader:
    return RunHeader(
        run=RunInfo(
            id=uuid.uuid4(),
            started_at=f.T0 + timedelta(days=i, hours=hours),
            trigger=trigger,
            profile=profile,
            branch=branch,
            # Every run after a commit's first measures it again on purpose (the feature
            # branch's CI with --force, check's confirmation, a --force re-run).
            environment={"remeasure": "all"} if hours > 1 else {},
        ),
        commit=_commit(i),
        machine=f.machine(),
    )


def _result(case: CaseKey, when: datetime, times: list[float], status: str = "ok") -> ResultRecord:
    return ResultRecord(
        case=case,
        status=status,
        error=None if status == "ok" else "boom",
        duration_s=1.0,
        started_at=when,
        metrics=(
            MetricRecord.from_samples("time", times, unit="s"),
            MetricRecord.from_samples(
                "time.tflops", [1 / t for t in times], unit="TFLOP/s", direction="higher"
            ),
        )
        if status == "ok"
        else (),
    )


def _times(rng: random.Random, level: float, n: int) -> list[float]:
    return [rng.gauss(level, level * 0.02) for _ in range(n)]


def seed(stores: list[SqlStore | CsvStore]) -> dict[str, list[list[float]]]:
    """Three commits: the first measured once (main, nightly); the second by the
    nightly, a CI run of a feature branch, check's confirmation rounds (no branch) and a
    --force re-run that was interrupted after its first case; the third by a branchless
    backfill whose matmul failed. Sample counts differ between runs (5 to 40). Returns
    the matmul time samples of each ok result per commit, for the expected values."""
    rng = random.Random(11)
    plan = [
        (0, 1, "main", "cron", [(MATMUL, 40), (ADAM, 20)], "ok"),
        (1, 1, "main", "cron", [(MATMUL, 20), (ADAM, 20)], "ok"),
        (1, 2, "feature/x", "ci", [(MATMUL, 5), (ADAM, 7)], "ok"),
        (1, 3, None, "ci", [(MATMUL, 12)], "ok"),
        (1, 4, None, "ci", [(MATMUL, 30)], "ok"),
        (1, 5, "main", "manual", [(MATMUL, 9)], "interrupted"),
        (2, 1, None, "manual", [(ADAM, 25)], "ok"),
    ]
    expected: dict[str, list[list[float]]] = {sha: [] for sha in SHAS}
    for i, hours, branch, trigger, cases, end in plan:
        header = _run(i, hours, branch=branch, trigger=trigger)
        when = header.run.started_at
        results = []
        for case, n in cases:
            times = _times(rng, 0.010 * (1 + 0.1 * i) if case == MATMUL else 0.004, n)
            results.append(_result(case, when, times))
            if case == MATMUL:
                expected[SHAS[i]].append(times)
        if i == 2:
            results.append(_result(MATMUL, when, [0.5] * 10, status="failed"))
        for store in stores:
            store.open_run(header)
            store.write_unit(header.run.id, results)
            store.finish_run(header.run.id, RunEnd(when + timedelta(minutes=5), end, ()))
    # The same commit on another profile is another series.
    smoke = _run(1, 6, branch="main", trigger="cron", profile="smoke")
    for store in stores:
        store.open_run(smoke)
        store.write_unit(smoke.run.id, [_result(MATMUL, smoke.run.started_at, [0.2] * 8)])
        store.finish_run(smoke.run.id, RunEnd(smoke.run.started_at, "ok", ()))
    return expected


def test_sql_and_csv_give_identical_commit_values(engine: Engine, tmp_path: Path) -> None:
    sql, csv = SqlStore(engine), CsvStore(tmp_path / "results")
    seed([sql, csv])

    from_sql, from_csv = sql.series_points(ANY), csv.series_points(ANY)

    assert from_sql == from_csv
    # 2 metrics of: both cases at the first two commits, adamw at the third, and the
    # smoke run's matmul.
    assert len(from_sql) == 2 * (2 + 2 + 1 + 1)
    one = PointFilter(repository=REPO, shas=[SHAS[1]], case=MATMUL.label, metric="time")
    assert sql.series_points(one) == csv.series_points(one)
    assert [p.profile for p in sql.series_points(one)] == ["full", "smoke"]


def test_a_commit_value_is_the_median_of_its_runs_medians(engine: Engine) -> None:
    sql = SqlStore(engine)
    expected = seed([sql])
    points = {(p.sha, p.case, p.metric, p.profile): p for p in sql.series_points(ANY)}

    # One run: its median and its own interval.
    first = points[(SHAS[0], MATMUL.label, "time", "full")]
    alone = Stats.of(expected[SHAS[0]][0])
    assert (first.value, first.runs, first.n, first.branches) == (alone.median, 1, 40, ("main",))
    assert (first.ci_low, first.ci_high) == alone.median_ci

    # Five runs (nightly, a feature branch's CI, two confirmation rounds, an interrupted
    # re-run): the median of the five medians, the span of their intervals.
    second = points[(SHAS[1], MATMUL.label, "time", "full")]
    stats = [Stats.of(t) for t in expected[SHAS[1]]]
    medians = sorted(s.median for s in stats)
    assert second.value == medians[2]
    assert (second.runs, second.n) == (5, 20 + 5 + 12 + 30 + 9)
    intervals = [s.median_ci for s in stats if s.median_ci is not None]
    assert len(intervals) == 4  # 5 samples are too few for a 95% interval of the median
    assert second.ci_low == min(lo for lo, _ in intervals)
    assert second.ci_high == max(hi for _, hi in intervals)
    assert second.branches == ("feature/x", "main")

    # Two runs: linear interpolation between the two medians (type 7).
    adam = points[(SHAS[1], ADAM.label, "time", "full")]
    assert adam.runs == 2
    low, high = sorted(_medians(sql, SHAS[1], ADAM.label))
    assert adam.value == low + (high - low) * 0.5

    # A failed result does not count; a backfill run records no branch.
    assert (SHAS[2], MATMUL.label, "time", "full") not in points
    assert points[(SHAS[2], ADAM.label, "time", "full")].branches == ()


def _medians(store: SqlStore, sha: str, case: str) -> list[float]:
    return [
        p.median
        for p in store.points(PointFilter(shas=[sha], case=case, metric="time"))
        if p.median is not None and p.profile == "full"
    ]


def test_series_point_fields(engine: Engine) -> None:
    """The view's columns reach every field of SeriesPoint."""
    sql = SqlStore(engine)
    seed([sql])
    point = sql.series_points(PointFilter(shas=[SHAS[1]], case=ADAM.label, metric="time"))[0]
    assert isinstance(point, SeriesPoint)
    assert (point.repository, point.sha, point.first_parent, point.subject) == (
        REPO,
        SHAS[1],
        SHAS[0],
        "commit 1",
    )
    assert point.machine == f.machine().fingerprint
    assert point.machine_label == "NVIDIA H100 80GB HBM3"
    assert (point.unit, point.direction) == ("s", "lower")
    assert point.committed_at == f.T0 + timedelta(days=1)
    assert point.measured_at == f.T0 + timedelta(days=1, hours=1)


def test_csv_points_read_only_the_runs_the_filter_names(tmp_path: Path) -> None:
    """Runs are chosen by their manifest (repository, commit, machine) before any CSV
    file is parsed, and device samples are never read for points: a damaged metrics
    file of another commit and damaged device samples of this one do not matter."""
    csv = CsvStore(tmp_path / "results")
    seed([csv])
    folders = {read_header(folder).commit.sha: folder for folder in find_runs(tmp_path / "results")}
    (folders[SHAS[0]] / "metrics-0001.csv").write_text("garbage\n")
    for samples in folders[SHAS[2]].glob("device_samples-*.csv"):
        samples.write_text("garbage\n")
    wanted = PointFilter(repository=REPO, shas=[SHAS[2]])
    assert [p.case for p in csv.points(wanted)] == [ADAM.label, ADAM.label]
    assert [p.runs for p in csv.series_points(wanted)] == [1, 1]
    with pytest.raises(CsvFormatError, match=r"metrics-0001\.csv: truncated or modified"):
        csv.points(PointFilter(repository=REPO, shas=[SHAS[0]]))
    with pytest.raises(CsvFormatError, match=r"device_samples-0001\.csv"):
        read_run(folders[SHAS[2]])  # a whole run is still read, and checked, in full
