"""Exactly once across runs in PostgreSQL: the advisory lock on a unit's work and the
check, under it, of what other runs recorded first. SqlStore.write_unit calls it; it is
apart from store/sql.py because it is the argument for exactly-once, not the writing.

Every unit is written under an advisory lock on its work, (repository, sha, machine,
profile), so writers of the same work (`run`, `check`, `bisect`, fleet workers,
`import`) take turns, and each checks, under the lock, what other runs recorded
(`first_writer`). A case another run recorded first is dropped from the unit and
reported (`SqlStore.take_recorded_elsewhere`). What counts as recorded first depends on
the run's `remeasure` (in its environment, set by `--force` and check's confirmation
rounds, or by `--retry-failed`):
- none: any other run's result for the case;
- "all": a result another run finished measuring at or after this run started (what was
  measured before it is what it measures again on purpose; a measurement still in
  flight when it started is as fresh as its own);
- "failed": the same, and a case whose latest other result is not a failure.
A unique constraint cannot say this, since re-measuring on purpose adds a second result.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, func, select

from commitbench.model.records import (
    FAILED_STATUSES,
    REMEASURE_ALL,
    REMEASURE_FAILED,
    RecordedKey,
    ResultRecord,
)
from commitbench.store.tables import Case, Commit, Machine, Result, Run

# Runs first in each write_unit transaction, before first_writer: returns the results to
# write (it may drop some) or raises to refuse the unit. The fleet uses it to check a
# runner's lease.
Fence = Callable[[Connection, uuid.UUID, Sequence[ResultRecord]], Sequence[ResultRecord]]


def of_key(key: RecordedKey) -> tuple[ColumnElement[bool], ...]:
    """The conditions that choose runs of (repository, sha, machine, profile); the query
    joins Run to Commit and Machine."""
    return (
        Commit.repository == key.repository,
        Commit.sha == key.sha,
        Machine.fingerprint == key.fingerprint,
        Run.profile == key.profile,
    )


def recorded_query(key: RecordedKey) -> Select[str]:
    """Labels of the cases with a result for (repository, sha, machine, profile)."""
    return (
        select(Case.label)
        .join(Result, Result.case_id == Case.id)
        .join(Run, Run.id == Result.run_id)
        .join(Commit, Commit.id == Run.commit_id)
        .join(Machine, Machine.id == Run.machine_id)
        .where(*of_key(key))
    )


def work_key(conn: Connection, run_id: uuid.UUID) -> tuple[RecordedKey, Any, str | None]:
    """The run's work, its start and its `remeasure`."""
    row = conn.execute(
        select(
            Commit.repository,
            Commit.sha,
            Machine.fingerprint,
            Run.profile,
            Run.started_at,
            Run.environment["remeasure"].astext,
        )
        .join(Commit, Commit.id == Run.commit_id)
        .join(Machine, Machine.id == Run.machine_id)
        .where(Run.id == run_id)
    ).one()
    return RecordedKey(row[0], row[1], row[2], row[3]), row[4], row[5]


def lock_work(conn: Connection, key: RecordedKey) -> None:
    """Take the transaction's advisory lock on the work (see the module docstring)."""
    name = "\x1f".join(("commitbench.work", key.repository, key.sha, key.fingerprint, key.profile))
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))


def first_writer(
    conn: Connection, run_id: uuid.UUID, results: Sequence[ResultRecord]
) -> tuple[list[ResultRecord], list[str]]:
    """Lock the run's work and split `results` into those to write and the labels of
    the cases another run recorded first (module docstring)."""
    key, started_at, remeasure = work_key(conn, run_id)
    lock_work(conn, key)
    labels = [r.case.label for r in results]
    # When the measurement ended: its start plus its duration (a case in flight when a
    # forced run started is fresh to it), else the run's start.
    ended = Result.started_at + func.make_interval(
        0, 0, 0, 0, 0, 0, func.coalesce(Result.duration_s, 0.0)
    )
    measured = func.coalesce(ended, Run.started_at)
    others = conn.execute(
        recorded_query(key)
        .add_columns(Result.status, measured)
        .where(Run.id != run_id, Case.label.in_(labels))
        .order_by(Case.label, measured, Result.id)
    ).all()
    latest: dict[str, tuple[str, Any]] = {}
    for label, status, at in others:
        latest[label] = (status, at)  # ordered by time: the last one stays
    taken = {
        label
        for label, (status, at) in latest.items()
        if _recorded_first(remeasure, started_at, status, at)
    }
    return [r for r in results if r.case.label not in taken], sorted(taken)


def _recorded_first(remeasure: str | None, started_at: Any, status: str, at: Any) -> bool:
    """Whether another run's latest result (its status, when measured) for a case takes
    the case from a run that started at `started_at` (module docstring)."""
    if remeasure not in (REMEASURE_ALL, REMEASURE_FAILED) or at >= started_at:
        return True
    return remeasure == REMEASURE_FAILED and status not in FAILED_STATUSES
