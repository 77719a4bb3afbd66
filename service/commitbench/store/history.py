"""Reading measurements back as points (model.points.Point), from PostgreSQL or from a
CSV results directory: the queries behind ReadStore.points of both stores."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from commitbench.model.points import Point, PointFilter, machine_label
from commitbench.model.records import MachineInfo
from commitbench.store.csvread import find_runs, read_run
from commitbench.store.tables import Case, Commit, Machine, Metric, Result, Run


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


def csv_points(root: Path, where: PointFilter) -> list[Point]:
    if not root.is_dir():
        return []
    shas = set(where.shas) if where.shas is not None else None
    points = []
    for folder in find_runs(root):
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
