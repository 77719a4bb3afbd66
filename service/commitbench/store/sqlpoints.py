"""Reading measurements back from PostgreSQL: the queries behind SqlStore.points (every
ok metric, run-level) and SqlStore.series_points (commit values, the `series_points`
view)."""

from __future__ import annotations

from typing import Any, TypeVar, Unpack

from sqlalchemy import ColumnElement, Engine, Select, select
from sqlalchemy.orm import InstrumentedAttribute

from commitbench.model.points import (
    Point,
    PointFilter,
    SeriesPoint,
    machine_label,
    series_order,
)
from commitbench.store.tables import Case, Commit, Machine, Metric, Result, Run
from commitbench.store.views import series_points as sp

Q = TypeVar("Q", bound=Select[Unpack[tuple[Any, ...]]])
# A column of a table (ORM attribute) or of the series_points view.
Column = ColumnElement[Any] | InstrumentedAttribute[Any]


def _narrowed(
    query: Q,
    where: PointFilter,
    repository: Column,
    sha: Column,
    case: Column,
    metric: Column,
) -> Q:
    """`query` kept to what `where` names, on the columns that hold each (the machine is
    always machines.fingerprint)."""
    if where.repository is not None:
        query = query.where(repository == where.repository)
    if where.shas is not None:
        query = query.where(sha.in_(list(where.shas)))
    if where.case is not None:
        query = query.where(case == where.case)
    if where.metric is not None:
        query = query.where(metric == where.metric)
    if where.machine is not None:
        query = query.where(Machine.fingerprint == where.machine)
    return query


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
            Metric.processes,
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
    query = _narrowed(query, where, Commit.repository, Commit.sha, Case.label, Metric.name)
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
                processes=tuple(r.processes) if r.processes is not None else None,
            )
            for r in conn.execute(query)
        ]


def sql_series_points(engine: Engine, where: PointFilter) -> list[SeriesPoint]:
    query: Select[tuple[object, ...]] = select(
        sp, Machine.fingerprint, Machine.gpu_name, Machine.gpu_count, Machine.cpu_model
    ).join(Machine, Machine.id == sp.c.machine_id)
    query = _narrowed(query, where, sp.c.repository, sp.c.sha, sp.c.case_label, sp.c.metric)
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
