"""Measurements read back as flat points, from PostgreSQL or from CSV results.

A Point is one metric of one ok result: the commit, the machine, branch and profile of
its run, and the raw samples. compare, check, detect, bisect and report all work on
lists of points, so the analysis stays pure and both stores serve it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from commitbench.analysis.compare import Sample
from commitbench.records import MachineInfo
from commitbench.store.csv import CsvStore, find_runs, read_run
from commitbench.store.sql import SqlStore
from commitbench.store.tables import Case, Commit, Machine, Metric, Result, Run


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
    run_id: uuid.UUID
    run_started_at: datetime
    case: str
    metric: str
    unit: str
    direction: str
    median: float | None
    ci_low: float | None
    ci_high: float | None
    samples: tuple[float, ...]


@dataclass(frozen=True)
class Filter:
    repository: str | None = None
    shas: Sequence[str] | None = None
    case: str | None = None
    metric: str | None = None
    machine: str | None = None  # fingerprint


def machine_label(gpu_name: str | None, gpu_count: int, cpu_model: str | None) -> str:
    if gpu_name:
        return f"{gpu_count}x {gpu_name}" if gpu_count > 1 else gpu_name
    return cpu_model or "unknown machine"


def load(store: SqlStore | CsvStore, where: Filter = Filter()) -> list[Point]:
    if isinstance(store, SqlStore):
        return _from_sql(store.engine, where)
    return _from_csv(store, where)


def _from_sql(engine: Engine, where: Filter) -> list[Point]:
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
            )
            for r in conn.execute(query)
        ]


def _label(m: MachineInfo) -> str:
    return machine_label(m.gpu_name, m.gpu_count, m.cpu_model)


def _from_csv(store: CsvStore, where: Filter) -> list[Point]:
    if not store.root.is_dir():
        return []
    shas = set(where.shas) if where.shas is not None else None
    points = []
    for folder in find_runs(store.root):
        data = read_run(folder)
        h = data.header
        if where.repository is not None and h.commit.repository != where.repository:
            continue
        if shas is not None and h.commit.sha not in shas:
            continue
        if where.machine is not None and h.machine.fingerprint != where.machine:
            continue
        for result in data.results:
            if result.status != "ok" or where.case not in (None, result.case.label):
                continue
            for m in result.metrics:
                if where.metric not in (None, m.name):
                    continue
                points.append(
                    Point(
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
                        case=result.case.label,
                        metric=m.name,
                        unit=m.unit,
                        direction=m.direction,
                        median=m.median,
                        ci_low=m.ci_low,
                        ci_high=m.ci_high,
                        samples=m.samples or (),
                    )
                )
    points.sort(
        key=lambda p: (p.committed_at or p.run_started_at, p.run_started_at, p.case, p.metric)
    )
    return points


def to_samples(points: Sequence[Point]) -> list[Sample]:
    return [
        Sample(
            p.machine, p.machine_label, p.profile, p.case, p.metric, p.unit, p.direction, p.samples
        )
        for p in points
    ]
