"""Measurements as the analysis reads them back: flat points and per-commit series.

A Point is one metric of one ok result: the commit, the machine, branch and profile of
its run, and the raw samples. Both stores return points (store.base.ReadStore), and
compare, check, detect, bisect and report work on them, so the analysis never touches a
database. A Series is one case's metric over commits on one machine and profile.

A commit's value in a series is defined once, here (`commit_values`), and in the SQL view
`series_points` (migration 0003, mirrored in store.views) that computes the same numbers
in PostgreSQL; tests/store/test_series_points.py holds the two to the same values.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from commitbench.model.metrics import samples_by_process
from commitbench.model.stats import percentile


@dataclass(frozen=True)
class Point:
    repository: str
    sha: str
    committed_at: datetime | None
    subject: str | None
    machine: str  # fingerprint
    machine_label: str
    branch: str | None
    profile: str
    run_id: uuid.UUID | None  # None: measured but not recorded (check's fresh samples)
    run_started_at: datetime
    case: str
    metric: str
    unit: str
    direction: str
    median: float | None
    ci_low: float | None
    ci_high: float | None
    samples: tuple[float, ...]
    n: int  # samples the result's statistics came from (metrics.n)
    first_parent: str | None  # the commit's first parent (None for a root commit)
    # The worker process of each sample (metrics.MetricRecord.processes); None: one.
    processes: tuple[int, ...] | None = None

    def by_process(self) -> dict[int, tuple[float, ...]]:
        """The samples of each worker process of this result."""
        return samples_by_process(self.samples, self.processes)


@dataclass(frozen=True)
class PointFilter:
    """Which points to read; None means any."""

    repository: str | None = None
    shas: Sequence[str] | None = None
    case: str | None = None
    metric: str | None = None
    machine: str | None = None  # fingerprint


ANY = PointFilter()  # every point


@dataclass(frozen=True)
class SeriesPoint:
    """A commit's value in a series (repository, case, metric, machine, profile).

    Made from every ok result of the case at the commit on that machine and profile, in
    every run (any trigger or branch; an interrupted run counts for the results it
    completed): `value` is the median (type 7) of those results' medians; `ci_low` and
    `ci_high` are the one result's 95% interval of its median, or with several results
    the span from the lowest ci_low to the highest ci_high (None where no result has
    one); `runs` counts the results, `n` their samples; `branches` are the distinct
    branches of those runs. Results without a median (no samples) do not count.
    """

    repository: str
    case: str
    metric: str
    machine: str  # fingerprint
    machine_label: str
    profile: str
    unit: str
    direction: str
    sha: str
    first_parent: str | None
    committed_at: datetime | None
    subject: str | None
    measured_at: datetime  # the earliest start of its runs
    value: float
    ci_low: float | None
    ci_high: float | None
    runs: int
    n: int
    branches: tuple[str, ...]

    @property
    def series(self) -> tuple[str, str, str, str, str]:
        return (self.repository, self.case, self.metric, self.machine, self.profile)


def series_order(p: SeriesPoint) -> tuple[object, ...]:
    """How both stores order series points: by series, then commit time (the first
    run's start for a commit without one), then sha (a total order, so the SQL and CSV
    reads compare equal element by element)."""
    return (*p.series, p.committed_at or p.measured_at, p.measured_at, p.sha, p.unit, p.direction)


def commit_values(points: Iterable[Point]) -> list[SeriesPoint]:
    """Series points from result-level points: the definition that the SQL view
    `series_points` repeats (store.views). The unit of repetition is the result (one
    run's result of the case). The verdicts of compare, check and bisect repeat at the
    level of the worker process instead (analysis.twolevel); this value is what trends show."""
    groups: dict[tuple[str, ...], list[Point]] = {}
    for p in points:
        if p.median is None:
            continue
        key = (p.repository, p.case, p.metric, p.machine, p.profile, p.unit, p.direction, p.sha)
        groups.setdefault(key, []).append(p)
    out = []
    for ps in groups.values():
        first = ps[0]
        medians = sorted(p.median for p in ps if p.median is not None)
        lows = [p.ci_low for p in ps if p.ci_low is not None]
        highs = [p.ci_high for p in ps if p.ci_high is not None]
        out.append(
            SeriesPoint(
                repository=first.repository,
                case=first.case,
                metric=first.metric,
                machine=first.machine,
                machine_label=first.machine_label,
                profile=first.profile,
                unit=first.unit,
                direction=first.direction,
                sha=first.sha,
                first_parent=first.first_parent,
                committed_at=first.committed_at,
                subject=first.subject,
                measured_at=min(p.run_started_at for p in ps),
                value=percentile(medians, 50.0),
                ci_low=min(lows) if lows else None,
                ci_high=max(highs) if highs else None,
                runs=len(ps),
                n=sum(p.n for p in ps),
                branches=tuple(sorted({p.branch for p in ps if p.branch is not None})),
            )
        )
    out.sort(key=series_order)
    return out


@dataclass(frozen=True)
class Series:
    repository: str
    case: str
    metric: str
    machine_label: str
    machine: str  # fingerprint
    branch: str | None
    profile: str
    unit: str
    direction: str
    shas: tuple[str, ...]
    subjects: tuple[str, ...]
    times: tuple[datetime | None, ...]
    medians: tuple[float, ...]  # each commit's value (SeriesPoint.value)
    ci_low: tuple[float | None, ...]
    ci_high: tuple[float | None, ...]
    runs: tuple[int, ...]  # results behind each value

    @property
    def title(self) -> str:
        return f"{self.case} · {self.metric}"


@dataclass(frozen=True)
class Step:
    """A change point that `detect` found in a series, as the regressions table keeps it."""

    index: int  # first commit of the new level in the series
    before: float
    after: float
    change: float  # after / before - 1
    p_value: float
    method: str
    fixed: bool  # a later step brought the level back


def machine_label(gpu_name: str | None, gpu_count: int, cpu_model: str | None) -> str:
    """How a machine is named to people: its GPU (with the count), else its CPU model."""
    if gpu_name:
        return f"{gpu_count}x {gpu_name}" if gpu_count > 1 else gpu_name
    return cpu_model or "unknown machine"
