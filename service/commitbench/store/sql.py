"""PostgreSQL store: writes runs through SQLAlchemy Core and COPY, reads them back.

Idempotency: a run's UUID and a result's (run, case) are unique keys. A unit whose
results already exist inserts nothing, and metrics and device samples are written only
for results this transaction inserted, so recording or importing the same data twice
leaves the same rows.

Exactly once across runs: every unit is written under an advisory lock on its work, and
a case another run recorded first is dropped from it (store/worklock.py says how and
why). The COPY of metrics and device samples is in store/sqlcopy.py.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import distinct_on, insert

from commitbench.model.cases import CaseKey
from commitbench.model.points import ANY, Point, PointFilter, Series, SeriesPoint, Step
from commitbench.model.records import (
    COMPLETE_RUN_STATUSES,
    CommitInfo,
    MachineInfo,
    RecordedKey,
    ResultRecord,
    RunData,
    RunEnd,
    RunHeader,
)
from commitbench.model.words import plural
from commitbench.store import artifacts, regressions, sqlpoints, sqlread
from commitbench.store.engine import describe
from commitbench.store.sqlcopy import copy_metrics, copy_samples, driver
from commitbench.store.tables import (
    Case,
    Commit,
    Machine,
    Metric,
    Result,
    Run,
    device_samples,
)
from commitbench.store.worklock import Fence, first_writer, of_key, recorded_query

log = logging.getLogger(__name__)

_ONE_TRANSACTION = "commitbench.one_transaction"


class SqlStore:
    """Writes and reads runs in PostgreSQL. The engine is passed in and not owned."""

    def __init__(self, engine: Engine, *, fence: Fence | None = None) -> None:
        self.engine = engine
        self._fence = fence
        self._elsewhere: dict[uuid.UUID, list[str]] = {}
        self._conn: Connection | None = None  # set inside one_transaction()

    @contextmanager
    def one_transaction(self) -> Iterator[SqlStore]:
        """A store whose writes (open_run, write_unit, finish_run) all go into one
        transaction, committed when the block ends and rolled back if it raises: `import`
        writes every run this way, all or nothing.

        Such a transaction takes the work lock of each run it writes and holds them all
        to its end; two of them taking locks in different orders could deadlock, so they
        take one lock of their own first and run one at a time. (A unit's transaction
        holds one work lock only, so it cannot close a cycle.)"""
        with self.engine.begin() as conn:
            conn.execute(
                select(func.pg_advisory_xact_lock(func.hashtextextended(_ONE_TRANSACTION, 0)))
            )
            store = SqlStore(self.engine, fence=self._fence)
            store._conn = conn
            yield store

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """The transaction of one write: its own, or the one of one_transaction()."""
        if self._conn is not None:
            yield self._conn
            return
        with self.engine.begin() as conn:
            yield conn

    @property
    def location(self) -> str:
        return describe(self.engine.url)

    # -- writing ---------------------------------------------------------------------

    def open_run(self, header: RunHeader) -> None:
        with self._begin() as conn:
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
        left as they are, and those another run recorded first are dropped (module
        docstring; `take_recorded_elsewhere` names them).
        """
        if not results:
            return 0
        with self._begin() as conn:
            if self._fence is not None:
                results = self._fence(conn, run_id, results)
            taken: list[str] = []
            if results:
                results, taken = first_writer(conn, run_id, results)
            new = self._insert(conn, run_id, results) if results else 0
        if taken:  # known for sure only once the transaction committed
            log.info(
                "run %s: %s already recorded by another run", run_id, plural(len(taken), "case")
            )
            self._elsewhere.setdefault(run_id, []).extend(taken)
        return new

    def save_artifacts(self, run_id: uuid.UUID, items: Iterable[artifacts.Artifact]) -> int:
        """Keep a run's profile files (store/artifacts.py) in the transaction of one
        write, or of one_transaction(); how many were new."""
        with self._begin() as conn:
            return artifacts.write_rows(conn, run_id, items)

    def take_recorded_elsewhere(self, run_id: uuid.UUID) -> list[str]:
        """The cases of the run's units written since the last call that another run had
        recorded first, so were dropped."""
        return self._elsewhere.pop(run_id, [])

    def _insert(self, conn: Connection, run_id: uuid.UUID, results: Sequence[ResultRecord]) -> int:
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
        raw = driver(conn)
        copy_metrics(raw, new)
        copy_samples(raw, ((run_id, rid, s) for rid, record in new for s in record.device_samples))
        return len(new)

    def finish_run(self, run_id: uuid.UUID, end: RunEnd) -> bool:
        """Mark the run finished; run-level samples are written only the first time."""
        with self._begin() as conn:
            finished = conn.execute(
                update(Run)
                .where(Run.id == run_id, Run.finished_at.is_(None))
                .values(finished_at=end.finished_at, status=end.status)
                .returning(Run.id)
            ).first()
            if finished is None:
                return False
            copy_samples(driver(conn), ((run_id, None, s) for s in end.device_samples))
        return True

    def interrupt_stale(self, fingerprint: str, gone: Callable[[Any], bool]) -> list[uuid.UUID]:
        """Mark `interrupted` this machine's runs still `running` whose runner `gone`
        says is dead (runner/liveness.py); they end at their last result's end (or
        their start). Only unfinished runs change, so sweepers running at once and a
        runner finishing meanwhile leave one end."""
        with self.engine.begin() as conn:
            candidates = conn.execute(
                select(Run.id, Run.environment["runner"])
                .join(Machine, Machine.id == Run.machine_id)
                .where(
                    Machine.fingerprint == fingerprint,
                    Run.status == "running",
                    Run.finished_at.is_(None),
                )
            ).all()
            stale = [run_id for run_id, runner in candidates if gone(runner)]
            if not stale:
                return []
            last = (
                select(
                    func.max(
                        Result.started_at
                        + func.make_interval(0, 0, 0, 0, 0, 0, func.coalesce(Result.duration_s, 0))
                    )
                )
                .where(Result.run_id == Run.id)
                .scalar_subquery()
            )
            return list(
                conn.execute(
                    update(Run)
                    .where(Run.id.in_(stale), Run.finished_at.is_(None))
                    .values(status="interrupted", finished_at=func.greatest(Run.started_at, last))
                    .returning(Run.id)
                ).scalars()
            )

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
                *of_key(key),
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
