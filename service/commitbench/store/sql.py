"""PostgreSQL store: writes runs through SQLAlchemy Core and COPY, reads them back.

Idempotency: a run's UUID and a result's (run, case) are unique keys. A unit whose
results already exist inserts nothing, and metrics and device samples are written only
for results this transaction inserted, so recording or importing the same data twice
leaves the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, Select, func, select, update
from sqlalchemy.dialects.postgresql import distinct_on, insert

from commitbench.model.points import ANY, Point, PointFilter, Series, SeriesPoint, Step
from commitbench.model.records import (
    COMPLETE_RUN_STATUSES,
    METRIC_FIELDS,
    CaseKey,
    CommitInfo,
    DeviceSample,
    MachineInfo,
    RecordedKey,
    ResultRecord,
    RunData,
    RunEnd,
    RunHeader,
)
from commitbench.store import regressions, sqlpoints, sqlread
from commitbench.store.engine import describe
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

METRIC_COLUMNS = ("result_id", *METRIC_FIELDS)
_METRIC_TYPES = (
    "int8",
    "text",
    "text",
    "text",
    "int4",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8[]",
    "jsonb",
    "int4[]",
)
_SAMPLE_TYPES = (
    "uuid",
    "int8",
    "timestamptz",
    "int2",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8",
    "int8",
    "float8",
    "float8",
)


def _copy_statement(table: str, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


_COPY_METRICS = _copy_statement("metrics", METRIC_COLUMNS)
_COPY_SAMPLES = _copy_statement("device_samples", DEVICE_SAMPLE_COLUMNS)


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):  # pragma: no cover - engine is psycopg 3
        raise TypeError("commitbench needs the psycopg 3 driver")
    return raw


# Runs first in each write_unit transaction: returns the results to write (it may drop
# some) or raises to refuse the unit. The fleet uses it to check a runner's lease and to
# keep one result per (commit, case, machine, profile) whatever the interleaving.
Fence = Callable[[Connection, uuid.UUID, Sequence[ResultRecord]], Sequence[ResultRecord]]


def recorded_query(key: RecordedKey) -> Select[str]:
    """Labels of the cases with a result for (repository, sha, machine, profile)."""
    return (
        select(Case.label)
        .join(Result, Result.case_id == Case.id)
        .join(Run, Run.id == Result.run_id)
        .join(Commit, Commit.id == Run.commit_id)
        .join(Machine, Machine.id == Run.machine_id)
        .where(
            Commit.repository == key.repository,
            Commit.sha == key.sha,
            Machine.fingerprint == key.fingerprint,
            Run.profile == key.profile,
        )
    )


class SqlStore:
    """Writes and reads runs in PostgreSQL. The engine is passed in and not owned."""

    def __init__(self, engine: Engine, *, fence: Fence | None = None) -> None:
        self.engine = engine
        self._fence = fence

    @property
    def location(self) -> str:
        return describe(self.engine.url)

    # -- writing ---------------------------------------------------------------------

    def open_run(self, header: RunHeader) -> None:
        with self.engine.begin() as conn:
            machine_id = self._machine_id(conn, header.machine)
            commit_id = self._commit_id(conn, header.commit)
            run = header.run
            conn.execute(
                insert(Run)
                .values(
                    id=run.id,
                    commit_id=commit_id,
                    machine_id=machine_id,
                    branch=run.branch,
                    trigger=run.trigger,
                    profile=run.profile,
                    environment=dict(run.environment),
                    started_at=run.started_at,
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )

    def write_unit(self, run_id: uuid.UUID, results: Sequence[ResultRecord]) -> int:
        """Write results with their metrics and samples in one transaction.

        Returns how many results were new; results already recorded for this run are
        left as they are.
        """
        if not results:
            return 0
        with self.engine.begin() as conn:
            if self._fence is not None:
                results = self._fence(conn, run_id, results)
                if not results:
                    return 0
            case_ids = self._case_ids(conn, [r.case for r in results])
            by_case = {case_ids[r.case.label]: r for r in results}
            if len(by_case) != len(results):
                raise ValueError("a unit lists the same case twice")
            inserted = conn.execute(
                insert(Result)
                .values(
                    [
                        {
                            "run_id": run_id,
                            "case_id": case_id,
                            "status": r.status,
                            "error": r.error,
                            "duration_s": r.duration_s,
                            "started_at": r.started_at,
                        }
                        for case_id, r in by_case.items()
                    ]
                )
                .on_conflict_do_nothing(index_elements=["run_id", "case_id"])
                .returning(Result.id, Result.case_id)
            ).all()
            new = [(result_id, by_case[case_id]) for result_id, case_id in inserted]
            raw = _driver(conn)
            self._copy_metrics(raw, new)
            self._copy_samples(
                raw,
                ((run_id, rid, s) for rid, record in new for s in record.device_samples),
            )
        return len(new)

    def finish_run(self, run_id: uuid.UUID, end: RunEnd) -> bool:
        """Mark the run finished; run-level samples are written only the first time."""
        with self.engine.begin() as conn:
            finished = conn.execute(
                update(Run)
                .where(Run.id == run_id, Run.finished_at.is_(None))
                .values(finished_at=end.finished_at, status=end.status)
                .returning(Run.id)
            ).first()
            if finished is None:
                return False
            self._copy_samples(_driver(conn), ((run_id, None, s) for s in end.device_samples))
        return True

    def _machine_id(self, conn: Connection, m: MachineInfo) -> int:
        conn.execute(
            insert(Machine)
            .values(
                fingerprint=m.fingerprint,
                gpu_name=m.gpu_name,
                gpu_count=m.gpu_count,
                gpu_memory_mib=m.gpu_memory_mib,
                driver_version=m.driver_version,
                cuda_version=m.cuda_version,
                cpu_model=m.cpu_model,
                cpu_count=m.cpu_count,
                ram_mib=m.ram_mib,
                info=dict(m.info),
            )
            .on_conflict_do_nothing(index_elements=["fingerprint"])
        )
        return conn.execute(
            select(Machine.id).where(Machine.fingerprint == m.fingerprint)
        ).scalar_one()

    def _commit_id(self, conn: Connection, c: CommitInfo) -> int:
        conn.execute(
            insert(Commit)
            .values(
                repository=c.repository,
                sha=c.sha,
                parents=list(c.parents),
                author_name=c.author_name,
                author_email=c.author_email,
                authored_at=c.authored_at,
                committed_at=c.committed_at,
                subject=c.subject,
            )
            .on_conflict_do_nothing(index_elements=["repository", "sha"])
        )
        return conn.execute(
            select(Commit.id).where(Commit.repository == c.repository, Commit.sha == c.sha)
        ).scalar_one()

    def _case_ids(self, conn: Connection, cases: Sequence[CaseKey]) -> dict[str, int]:
        unique = {c.label: c for c in cases}
        conn.execute(
            insert(Case)
            .values(
                [
                    {"name": c.name, "params": c.params_dict, "label": label}
                    for label, c in unique.items()
                ]
            )
            .on_conflict_do_nothing()
        )
        rows = conn.execute(select(Case.label, Case.id).where(Case.label.in_(list(unique)))).all()
        return {label: case_id for label, case_id in rows}

    @staticmethod
    def _copy_metrics(
        raw: psycopg.Connection[Any], new: Sequence[tuple[int, ResultRecord]]
    ) -> None:
        rows = [
            # samples, properties and processes (the last three fields) need their
            # database types.
            (
                result_id,
                *m.row()[:-3],
                list(m.samples) if m.samples is not None else None,
                Jsonb(dict(m.properties)),
                list(m.processes) if m.processes is not None else None,
            )
            for result_id, record in new
            for m in record.metrics
        ]
        if not rows:
            return
        with raw.cursor() as cur, cur.copy(_COPY_METRICS) as copy:
            copy.set_types(list(_METRIC_TYPES))
            for row in rows:
                copy.write_row(row)

    @staticmethod
    def _copy_samples(
        raw: psycopg.Connection[Any],
        rows: Iterable[tuple[uuid.UUID, int | None, DeviceSample]],
    ) -> None:
        """COPY device samples; the hot path of ingest (hundreds of thousands of rows)."""
        it = iter(rows)
        first = next(it, None)
        if first is None:
            return
        with raw.cursor() as cur, cur.copy(_COPY_SAMPLES) as copy:
            # Binary COPY sends each field's bytes untagged, and a uuid's binary form is
            # its 16 bytes: sent as bytea they skip a Python-level dumper per row.
            copy.set_types(["bytea", *_SAMPLE_TYPES[1:]])
            write = copy.write_row
            for run_id, result_id, s in (first, *it):
                write((run_id.bytes, result_id, *s))

    # -- reading ---------------------------------------------------------------------

    def recorded(self, key: RecordedKey) -> dict[str, str]:
        """The cases with a result for (repository, sha, machine, profile): label -> the
        status of the latest (by the run's start) result."""
        latest = (
            recorded_query(key)
            .add_columns(Result.status)
            .ext(distinct_on(Case.label))
            .order_by(Case.label, Run.started_at.desc(), Result.id.desc())
        )
        with self.engine.connect() as conn:
            return {label: status for label, status in conn.execute(latest)}

    def selections(self, key: RecordedKey) -> list[dict[str, Any]]:
        """The selections of the complete runs for the key (base.Store.selections)."""
        query = (
            select(Run.environment["selection"])
            .join(Commit, Commit.id == Run.commit_id)
            .join(Machine, Machine.id == Run.machine_id)
            .where(
                Commit.repository == key.repository,
                Commit.sha == key.sha,
                Machine.fingerprint == key.fingerprint,
                Run.profile == key.profile,
                Run.status.in_(COMPLETE_RUN_STATUSES),
                Run.environment.has_key("selection"),
            )
        )
        with self.engine.connect() as conn:
            return [dict(found) for found in conn.execute(query).scalars()]

    def run_ids(self) -> list[uuid.UUID]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(Run.id).order_by(Run.started_at, Run.id)).scalars())

    def counts(self) -> dict[str, int]:
        """Row count of every table (for tests, `db current` and import summaries)."""
        tables = [Machine, Commit, Run, Case, Result, Metric]
        with self.engine.connect() as conn:
            out = {
                t.__tablename__: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in tables
            }
            out["device_samples"] = conn.execute(
                select(func.count()).select_from(device_samples)
            ).scalar_one()
        return out

    def points(self, where: PointFilter = ANY) -> list[Point]:
        return sqlpoints.sql_points(self.engine, where)

    def series_points(self, where: PointFilter = ANY) -> list[SeriesPoint]:
        return sqlpoints.sql_series_points(self.engine, where)

    def save_regression(self, series: Series, step: Step) -> int | None:
        return regressions.record(self.engine, series, step)

    def load_run(self, run_id: uuid.UUID) -> RunData:
        """The whole run as recorded (for export, the report and tests)."""
        return sqlread.load_run(self.engine, run_id, self.location)

    def runs_of(self, repository: str, sha: str) -> list[tuple[RunHeader, set[str]]]:
        return sqlread.runs_of(self.engine, repository, sha)
