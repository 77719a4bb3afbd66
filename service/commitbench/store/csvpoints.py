"""Reading measurements back from a CSV results directory: the readers behind
CsvStore.points and CsvStore.series_points. Runs are chosen by their manifest before any
of their files is parsed, and device samples are never read. No SQLAlchemy here: a
command on CSV results does not pay for importing the database stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from commitbench.model.points import (
    Point,
    PointFilter,
    SeriesPoint,
    commit_values,
    machine_label,
)
from commitbench.model.records import MachineInfo, RunHeader
from commitbench.store.csvread import find_runs, read_header, read_ok_metrics


def _label(m: MachineInfo) -> str:
    return machine_label(m.gpu_name, m.gpu_count, m.cpu_model)


def _wanted(h: RunHeader, where: PointFilter, shas: set[str] | None) -> bool:
    """Whether a run's manifest matches the filter (before any CSV file is parsed)."""
    return (
        (where.repository is None or h.commit.repository == where.repository)
        and (shas is None or h.commit.sha in shas)
        and (where.machine is None or h.machine.fingerprint == where.machine)
    )


def _csv_points(root: Path, where: PointFilter) -> Iterator[Point]:
    if not root.is_dir():
        return
    shas = set(where.shas) if where.shas is not None else None
    for folder in find_runs(root):
        h = read_header(folder)
        if not _wanted(h, where, shas):
            continue
        for label, m in read_ok_metrics(folder, case=where.case, metric=where.metric):
            yield Point(
                repository=h.commit.repository,
                sha=h.commit.sha,
                committed_at=h.commit.committed_at,
                subject=h.commit.subject,
                machine=h.machine.fingerprint,
                machine_label=_label(h.machine),
                branch=h.run.branch,
                profile=h.run.profile,
                run_id=h.run.id,
                run_started_at=h.run.started_at,
                case=label,
                metric=m.name,
                unit=m.unit,
                direction=m.direction,
                median=m.median,
                ci_low=m.ci_low,
                ci_high=m.ci_high,
                samples=m.samples or (),
                n=m.n,
                first_parent=h.commit.parents[0] if h.commit.parents else None,
                processes=m.processes,
            )


def csv_points(root: Path, where: PointFilter) -> list[Point]:
    points = list(_csv_points(root, where))
    points.sort(
        key=lambda p: (p.committed_at or p.run_started_at, p.run_started_at, p.case, p.metric)
    )
    return points


def csv_series_points(root: Path, where: PointFilter) -> list[SeriesPoint]:
    return commit_values(_csv_points(root, where))
