"""Reading measurements back, from PostgreSQL or from a CSV results directory: the
queries behind ReadStore.points (one point per metric of an ok result) and
ReadStore.series_points (a commit's value in each series: the view series_points in
PostgreSQL, model.points.commit_values over the CSV points)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, Select, select

from commitbench.model.points import (
    Point,
    PointFilter,
    SeriesPoint,
    commit_values,
    machine_label,
    series_order,
)
from commitbench.model.records import MachineInfo, RunHeader
from commitbench.store.csvread import find_runs, read_header, read_ok_metrics
from commitbench.store.tables import Case, Commit, Machine, Metric, Result, Run
from commitbench.store.views import series_points as sp


def sql_points(engine: Engine, where: PointFilter) -> list[Point]:
    query = (
        select(
            Commit.repository,
            Commit.sha,
            Commit.committed_at,
            Commit.subject,
            Machine.fingerprint,
            Machine.gpu_name,
            Machine.gpu_count,
            Machine.cpu_model,
            Run.branch,
            Run.profile,
            Run.id,
            Run.started_at,
            Case.label,
            Metric.name,
            Metric.unit,
            Metric.direction,
            Metric.median,
            Metric.ci_low,
            Metric.ci_high,
            Metric.samples,
            Metric.n,
            Commit.parents[1].label("first_parent"),
        )
        .select_from(Metric)
        .join(Result, Result.id == Metric.result_id)
        .join(Run, Run.id == Result.run_id)
        .join(Commit, Commit.id == Run.commit_id)
        .join(Machine, Machine.id == Run.machine_id)
        .join(Case, Case.id == Result.case_id)
        .where(Result.status == "ok")
        .order_by(Commit.committed_at, Run.started_at, Case.label, Metric.name)
    )
    if where.repository is not None:
        query = query.where(Commit.repository == where.repository)
    if where.shas is not None:
        query = query.where(Commit.sha.in_(list(where.shas)))
    if where.case is not None:
        query = query.where(Case.label == where.case)
    if where.metric is not None:
        query = query.where(Metric.name == where.metric)
    if where.machine is not None:
        query = query.where(Machine.fingerprint == where.machine)
    with engine.connect() as conn:
        return [
            Point(
                repository=r.repository,
                sha=r.sha,
                committed_at=r.committed_at,
                subject=r.subject,
                machine=r.fingerprint,
                machine_label=machine_label(r.gpu_name, r.gpu_count, r.cpu_model),
                branch=r.branch,
                profile=r.profile,
                run_id=r.id,
                run_started_at=r.started_at,
                case=r.label,
                metric=r.name,
                unit=r.unit,
                direction=r.direction,
                median=r.median,
                ci_low=r.ci_low,
                ci_high=r.ci_high,
                samples=tuple(r.samples or ()),
                n=r.n,
                first_parent=r.first_parent,
            )
            for r in conn.execute(query)
        ]


def sql_series_points(engine: Engine, where: PointFilter) -> list[SeriesPoint]:
    query: Select[tuple[object, ...]] = select(
        sp, Machine.fingerprint, Machine.gpu_name, Machine.gpu_count, Machine.cpu_model
    ).join(Machine, Machine.id == sp.c.machine_id)
    if where.repository is not None:
        query = query.where(sp.c.repository == where.repository)
    if where.shas is not None:
        query = query.where(sp.c.sha.in_(list(where.shas)))
    if where.case is not None:
        query = query.where(sp.c.case_label == where.case)
    if where.metric is not None:
        query = query.where(sp.c.metric == where.metric)
    if where.machine is not None:
        query = query.where(Machine.fingerprint == where.machine)
    with engine.connect() as conn:
        out = [
            SeriesPoint(
                repository=r.repository,
                case=r.case_label,
                metric=r.metric,
                machine=r.fingerprint,
                machine_label=machine_label(r.gpu_name, r.gpu_count, r.cpu_model),
                profile=r.profile,
                unit=r.unit,
                direction=r.direction,
                sha=r.sha,
                first_parent=r.first_parent,
                committed_at=r.committed_at,
                subject=r.subject,
                measured_at=r.measured_at,
                value=r.value,
                ci_low=r.ci_low,
                ci_high=r.ci_high,
                runs=r.runs,
                n=r.n,
                branches=tuple(r.branches),
            )
            for r in conn.execute(query)
        ]
    out.sort(key=series_order)
    return out


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
            )


def csv_points(root: Path, where: PointFilter) -> list[Point]:
    points = list(_csv_points(root, where))
    points.sort(
        key=lambda p: (p.committed_at or p.run_started_at, p.run_started_at, p.case, p.metric)
    )
    return points


def csv_series_points(root: Path, where: PointFilter) -> list[SeriesPoint]:
    return commit_values(_csv_points(root, where))
