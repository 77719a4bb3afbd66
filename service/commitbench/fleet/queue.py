"""The job queue in PostgreSQL: enqueue, claim, heartbeat, finish, list.

Claiming is one statement, `UPDATE jobs ... WHERE id = (SELECT id ... ORDER BY id LIMIT 1
FOR UPDATE SKIP LOCKED)`: concurrent runners never wait on each other's rows and never
take the same job. A claim takes a pending job, or a running one whose lease expired
(its runner died or lost the database); each claim counts an attempt. The lease, the
heartbeat and `not_before` use the database clock (`now()`), so runners need not agree
on the time.

Every later change of a claimed job is fenced by its token (lease_owner, attempts): a
runner whose job was reclaimed meanwhile changes nothing (`LeaseLost`).

Machine kinds and the fitting of a machine to a job are in kinds.py, the claim
statement in claiming.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert

from commitbench.errors import CommitbenchError
from commitbench.fleet.claiming import claim_statement
from commitbench.fleet.kinds import MachineKind, servable
from commitbench.model import sweep
from commitbench.model.records import MachineInfo
from commitbench.model.sweep import Overrides
from commitbench.store.tables import Job

ERROR_CHARS = 4000


class LeaseLost(CommitbenchError):
    """The job was reclaimed by another runner (this runner's lease had expired)."""


@dataclass(frozen=True)
class JobSpec:
    """Everything about a job but its commit: what enqueue records for each sha."""

    repository: str
    benches: str | None = None
    filter: str | None = None
    profile: str = "auto"
    kind: MachineKind = MachineKind()
    branch: str | None = None
    trigger: str = "manual"
    timeout_s: float = 600.0
    max_attempts: int = 3
    params: Overrides = ()  # the --param sweep (model/sweep.py): part of the work


@dataclass(frozen=True)
class ClaimedJob:
    """A job as a runner holds it; (owner, attempt) is the fencing token."""

    id: int
    spec: JobSpec
    sha: str
    owner: str
    attempt: int
    max_attempts: int


@dataclass(frozen=True)
class Enqueued:
    id: int
    sha: str
    new: bool


def enqueue(engine: Engine, spec: JobSpec, shas: Sequence[str]) -> list[Enqueued]:
    """Record a job per sha, oldest first; work already queued (in any state) is kept
    as it is. One transaction."""
    if not shas:
        return []
    rows = [
        {
            "repository": spec.repository,
            "sha": sha,
            "branch": spec.branch,
            "benches": spec.benches,
            "filter": spec.filter,
            "profile": spec.profile,
            "trigger": spec.trigger,
            "gpu_model": spec.kind.gpu_model,
            "gpu_count": spec.kind.gpu_count,
            "timeout_s": spec.timeout_s,
            "max_attempts": spec.max_attempts,
            "params": _params(spec),
        }
        for sha in dict.fromkeys(shas)
    ]
    with engine.begin() as conn:
        new = dict(
            conn.execute(
                insert(Job)
                .values(rows)
                .on_conflict_do_nothing(constraint="uq_jobs_work")
                .returning(Job.sha, Job.id)
            ).all()
        )
        old = dict(
            conn.execute(
                select(Job.sha, Job.id).where(_same_work(spec), Job.sha.in_(list(shas)))
            ).all()
        )
    return [
        Enqueued(new.get(sha, old.get(sha, -1)), sha, sha in new) for sha in dict.fromkeys(shas)
    ]


def _params(spec: JobSpec) -> dict[str, list[str]] | None:
    """The sweep as the jobs table keeps it: NULL for none."""
    return sweep.to_json(spec.params) if spec.params else None


def _same_work(spec: JobSpec) -> ColumnElement[bool]:
    """Jobs of the same work as `spec` (the unique key but the sha; NULLs equal)."""
    params = _params(spec)
    return and_(
        Job.params.is_(None) if params is None else Job.params == params,
        Job.repository == spec.repository,
        Job.benches.is_not_distinct_from(spec.benches),
        Job.filter.is_not_distinct_from(spec.filter),
        Job.profile == spec.profile,
        Job.gpu_model.is_not_distinct_from(spec.kind.gpu_model),
        Job.gpu_count == spec.kind.gpu_count,
    )


def last_enqueued(engine: Engine, spec: JobSpec) -> str | None:
    """The sha of the newest job of the same work on spec.branch (follow mode)."""
    with engine.connect() as conn:
        return conn.execute(
            select(Job.sha)
            .where(_same_work(spec), Job.branch == spec.branch)
            .order_by(Job.id.desc())
            .limit(1)
        ).scalar_one_or_none()


def _lease(seconds: float) -> Any:
    return func.now() + timedelta(seconds=seconds)


def _autocommit(engine: Engine) -> Engine:
    """The queue's single statements commit on their own: no BEGIN and COMMIT round
    trips around them (a claim is one round trip)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def claim(engine: Engine, owner: str, machine: MachineInfo, lease_s: float) -> ClaimedJob | None:
    """Take the oldest job this machine can serve, or None. One statement.

    It also parks expired jobs that are out of attempts (whatever machine they need),
    so a job whose runners keep dying stops being retried.
    """
    params = {
        "new_owner": owner,
        "new_lease": timedelta(seconds=lease_s),
        "has_gpu_name": machine.gpu_name or "",
        "has_gpus": machine.gpu_count,
    }
    with _autocommit(engine).connect() as conn:
        row = conn.execute(claim_statement(), params).first()
    if row is None:
        return None
    spec = JobSpec(
        repository=row.repository,
        benches=row.benches,
        filter=row.filter,
        profile=row.profile,
        kind=MachineKind(row.gpu_model, row.gpu_count),
        branch=row.branch,
        trigger=row.trigger,
        timeout_s=row.timeout_s,
        max_attempts=row.max_attempts,
        params=sweep.from_json(row.params),
    )
    return ClaimedJob(row.id, spec, row.sha, owner, row.attempts, row.max_attempts)


def _held(job: ClaimedJob) -> ColumnElement[bool]:
    return and_(
        Job.id == job.id,
        Job.state == "running",
        Job.lease_owner == job.owner,
        Job.attempts == job.attempt,
    )


def check_lease(conn: Connection, job: ClaimedJob) -> None:
    """In the caller's transaction: LeaseLost unless `job` is still ours. Holds a share
    lock on the row until commit, so the job cannot be reclaimed halfway through."""
    held = conn.execute(select(Job.id).where(_held(job)).with_for_update(read=True)).first()
    if held is None:
        raise LeaseLost(f"job {job.id} was reclaimed by another runner")


def heartbeat(engine: Engine, job: ClaimedJob, lease_s: float) -> bool:
    """Extend the lease; False when the job is no longer ours."""
    with _autocommit(engine).connect() as conn:
        row = conn.execute(
            update(Job)
            .where(_held(job))
            .values(heartbeat_at=func.now(), lease_expires_at=_lease(lease_s))
            .returning(Job.id)
        ).first()
    return row is not None


def _finish(engine: Engine, job: ClaimedJob, **values: Any) -> bool:
    """Apply `values` to a job we hold. True also when an earlier try of the same change
    committed but its reply was lost (the database went away): the retry finds the job
    already in the new state under our token."""
    with engine.begin() as conn:
        row = conn.execute(update(Job).where(_held(job)).values(**values).returning(Job.id))
        if row.first() is not None:
            return True
        now = conn.execute(
            select(Job.state).where(
                Job.id == job.id, Job.lease_owner == job.owner, Job.attempts == job.attempt
            )
        ).scalar_one_or_none()
    return now is not None and now == values.get("state")


def complete(engine: Engine, job: ClaimedJob, *, failed: str | None, run_id: Any) -> bool:
    """Mark the job done (or failed: it ran, and `failed` says which cases broke)."""
    return _finish(
        engine,
        job,
        state="failed" if failed else "done",
        error=failed[-ERROR_CHARS:] if failed else None,
        run_id=run_id,
        finished_at=func.now(),
    )


def fail_attempt(engine: Engine, job: ClaimedJob, error: str, retry_in_s: float) -> bool:
    """An attempt errored: pending again after `retry_in_s`, or parked when it was the
    last attempt."""
    last = job.attempt >= job.max_attempts
    return _finish(
        engine,
        job,
        state="parked" if last else "pending",
        error=f"attempt {job.attempt} of {job.max_attempts}: {error}"[-ERROR_CHARS:],
        not_before=_lease(0 if last else retry_in_s),
        finished_at=func.now() if last else None,
    )


def release(engine: Engine, job: ClaimedJob) -> bool:
    """Give the job back untouched (graceful stop): pending now, the attempt not
    counted."""
    return _finish(engine, job, state="pending", attempts=Job.attempts - 1, not_before=func.now())


def left_for(engine: Engine, machine: MachineInfo) -> int:
    """Jobs this machine could still get: pending (also not yet due) or running (their
    runner may die)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(Job)
                .where(Job.state.in_(("pending", "running")), servable(machine))
            ).scalar_one()
        )
