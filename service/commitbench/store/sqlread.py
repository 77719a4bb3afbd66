"""Reading whole runs back from PostgreSQL (export, the report, tests)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session

from commitbench.errors import CommitbenchError
from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import (
    CommitInfo,
    DeviceSample,
    MachineInfo,
    ResultRecord,
    RunData,
    RunEnd,
    RunHeader,
    RunInfo,
)
from commitbench.store.tables import (
    DEVICE_SAMPLE_COLUMNS,
    Case,
    Commit,
    Machine,
    Metric,
    Result,
    Run,
    device_samples,
)


def _runs() -> Select[Run, Commit, Machine]:
    return (
        select(Run, Commit, Machine)
        .join(Commit, Run.commit_id == Commit.id)
        .join(Machine, Run.machine_id == Machine.id)
    )


def runs_of(engine: Engine, repository: str, sha: str) -> list[tuple[RunHeader, set[str]]]:
    """The runs of one commit, oldest first, with the labels of their results."""
    with Session(engine) as conn:
        rows = conn.execute(
            _runs()
            .where(Commit.repository == repository, Commit.sha == sha)
            .order_by(Run.started_at, Run.id)
        ).all()
        labels: dict[uuid.UUID, set[str]] = {run.id: set() for run, _, _ in rows}
        for run_id, label in conn.execute(
            select(Result.run_id, Case.label)
            .join(Case, Result.case_id == Case.id)
            .where(Result.run_id.in_(list(labels)))
        ):
            labels[run_id].add(label)
    return [(_header(run, commit, machine), labels[run.id]) for run, commit, machine in rows]


def load_run(engine: Engine, run_id: uuid.UUID, location: str) -> RunData:
    # A Session, because the reads select whole mapped rows (a Core connection
    # would flatten them into columns).
    with Session(engine) as conn:
        row = conn.execute(_runs().where(Run.id == run_id)).one_or_none()
        if row is None:
            raise CommitbenchError(f"no run {run_id} in {location}")
        run, commit, machine = row
        header = _header(run, commit, machine)
        results = _load_results(conn, run_id)
        end = None
        if run.finished_at is not None:
            end = RunEnd(
                finished_at=run.finished_at,
                status=run.status,
                device_samples=tuple(_run_samples(conn, run_id)),
            )
    return RunData(header=header, units=(tuple(results),) if results else (), end=end)


def _header(run: Run, commit: Commit, machine: Machine) -> RunHeader:
    return RunHeader(
        run=RunInfo(
            id=run.id,
            started_at=run.started_at,
            trigger=run.trigger,
            profile=run.profile,
            branch=run.branch,
            environment=run.environment,
        ),
        commit=CommitInfo(
            repository=commit.repository,
            sha=commit.sha,
            parents=tuple(commit.parents),
            author_name=commit.author_name,
            author_email=commit.author_email,
            authored_at=commit.authored_at,
            committed_at=commit.committed_at,
            subject=commit.subject,
        ),
        machine=MachineInfo(
            fingerprint=machine.fingerprint,
            gpu_name=machine.gpu_name,
            gpu_count=machine.gpu_count,
            gpu_memory_mib=machine.gpu_memory_mib,
            driver_version=machine.driver_version,
            cuda_version=machine.cuda_version,
            cpu_model=machine.cpu_model,
            cpu_count=machine.cpu_count,
            ram_mib=machine.ram_mib,
            info=machine.info,
        ),
    )


def _load_results(conn: Session, run_id: uuid.UUID) -> list[ResultRecord]:
    rows = conn.execute(
        select(Result, Case)
        .join(Case, Result.case_id == Case.id)
        .where(Result.run_id == run_id)
        .order_by(Result.id)
    ).all()
    metrics: dict[int, list[MetricRecord]] = {}
    for m in conn.execute(
        select(Metric)
        .join(Result, Metric.result_id == Result.id)
        .where(Result.run_id == run_id)
        .order_by(Metric.id)
    ).scalars():
        metrics.setdefault(m.result_id, []).append(
            MetricRecord(
                name=m.name,
                unit=m.unit,
                direction=m.direction,
                n=m.n,
                mean=m.mean,
                median=m.median,
                stddev=m.stddev,
                min=m.min,
                max=m.max,
                ci_low=m.ci_low,
                ci_high=m.ci_high,
                samples=tuple(m.samples) if m.samples is not None else None,
                properties=m.properties,
                processes=tuple(m.processes) if m.processes is not None else None,
            )
        )
    samples: dict[int | None, list[DeviceSample]] = {}
    for result_id, sample in _iter_samples(conn, run_id):
        samples.setdefault(result_id, []).append(sample)
    return [
        ResultRecord(
            case=CaseKey.of(case.name, case.params),
            status=result.status,
            error=result.error,
            duration_s=result.duration_s,
            started_at=result.started_at,
            metrics=tuple(metrics.get(result.id, ())),
            device_samples=tuple(samples.get(result.id, ())),
        )
        for result, case in rows
    ]


def _iter_samples(conn: Session, run_id: uuid.UUID) -> Iterator[tuple[int | None, DeviceSample]]:
    cols = [device_samples.c[name] for name in DEVICE_SAMPLE_COLUMNS[2:]]
    query = (
        select(device_samples.c.result_id, *cols)
        .where(device_samples.c.run_id == run_id, device_samples.c.result_id.is_not(None))
        .order_by(device_samples.c.time, device_samples.c.gpu_index)
    )
    for row in conn.execute(query):
        yield row[0], DeviceSample(*row[1:])


def _run_samples(conn: Session, run_id: uuid.UUID) -> Iterator[DeviceSample]:
    """Samples taken between cases (result_id NULL)."""
    cols = [device_samples.c[name] for name in DEVICE_SAMPLE_COLUMNS[2:]]
    query = (
        select(*cols)
        .where(device_samples.c.run_id == run_id, device_samples.c.result_id.is_(None))
        .order_by(device_samples.c.time, device_samples.c.gpu_index)
    )
    for row in conn.execute(query):
        yield DeviceSample(*row)
