"""What `commitbench jobs` shows: the queue, newest first, and counts by state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, func, select

from commitbench.errors import ConfigError
from commitbench.fleet.kinds import MachineKind
from commitbench.store.tables import JOB_STATES, Job


@dataclass(frozen=True)
class JobRow:
    id: int
    state: str
    repository: str
    sha: str
    branch: str | None
    kind: str
    attempts: int
    max_attempts: int
    runner: str | None
    age_s: float | None  # running: since claimed; pending: since enqueued
    heartbeat_age_s: float | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


_LISTED = (
    "id",
    "state",
    "repository",
    "sha",
    "branch",
    "gpu_model",
    "gpu_count",
    "attempts",
    "max_attempts",
    "lease_owner",
    "error",
    "created_at",
    "finished_at",
)


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)


def list_jobs(engine: Engine, states: Sequence[str] = (), limit: int = 100) -> list[JobRow]:
    """The newest `limit` jobs in `states` (all states when empty), newest first."""
    unknown = set(states) - set(JOB_STATES)
    if unknown:
        raise ConfigError(f"unknown job state(s): {', '.join(sorted(unknown))}")
    since = case((Job.state == "running", Job.started_at), else_=Job.created_at)
    query = select(
        *(Job.__table__.c[name] for name in _LISTED),
        func.extract("epoch", func.now() - since).label("age"),
        func.extract("epoch", func.now() - Job.heartbeat_at).label("beat"),
    )
    if states:
        query = query.where(Job.state.in_(list(states)))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(Job.id.desc()).limit(limit)).all()
    return [
        JobRow(
            id=j.id,
            state=j.state,
            repository=j.repository,
            sha=j.sha,
            branch=j.branch,
            kind=str(MachineKind(j.gpu_model, j.gpu_count)),
            attempts=j.attempts,
            max_attempts=j.max_attempts,
            runner=j.lease_owner,
            age_s=_seconds(j.age) if j.state in ("pending", "running") else None,
            heartbeat_age_s=_seconds(j.beat) if j.state == "running" else None,
            error=j.error,
            created_at=j.created_at,
            finished_at=j.finished_at,
        )
        for j in rows
    ]


def state_counts(engine: Engine) -> dict[str, int]:
    """How many jobs are in each state (every state, zeros included)."""
    with engine.connect() as conn:
        rows = conn.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    found = {state: int(n) for state, n in rows}
    return {state: found.get(state, 0) for state in JOB_STATES}
