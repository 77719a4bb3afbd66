"""The job queue in PostgreSQL: enqueue, claim, heartbeat, finish, list.

Claiming is one statement, `UPDATE jobs ... WHERE id = (SELECT id ... ORDER BY id LIMIT 1
FOR UPDATE SKIP LOCKED)`: concurrent runners never wait on each other's rows and never
take the same job. A claim takes a pending job, or a running one whose lease expired
(its runner died or lost the database); each claim counts an attempt. The lease, the
heartbeat and `not_before` use the database clock (`now()`), so runners need not agree
on the time.

Every later change of a claimed job is fenced by its token (lease_owner, attempts): a
runner whose job was reclaimed meanwhile changes nothing (`LeaseLost`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Interval,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from commitbench.errors import CommitbenchError, ConfigError
from commitbench.model import sweep
from commitbench.model.records import MachineInfo
from commitbench.model.sweep import Overrides
from commitbench.store.tables import Job

ERROR_CHARS = 4000
_KIND = re.compile(r"^(?P<model>[A-Za-z0-9_.-]*?)(?:x(?P<count>[1-9][0-9]*))?$")


class LeaseLost(CommitbenchError):
    """The job was reclaimed by another runner (this runner's lease had expired)."""


@dataclass(frozen=True)
class MachineKind:
    """What a job requires of a machine: a GPU model (a substring of the GPU name, any
    case; None: any machine) and at least `gpu_count` GPUs."""

    gpu_model: str | None = None
    gpu_count: int = 0

    @classmethod
    def parse(cls, text: str) -> MachineKind:
        """`any`, `gpu` (at least one GPU), `MODEL` (e.g. H100), each optionally with
        `xN` for at least N GPUs: `H100x8`, `gpux2`."""
        match = _KIND.match(text.strip())
        if not text.strip() or match is None:
            raise ConfigError(f"machine kind {text!r}: expected any, gpu or a GPU model, [xN]")
        model = match["model"]
        count = int(match["count"]) if match["count"] else None
        if model.lower() in ("", "any", "cpu"):
            return cls(None, count or 0)
        if model.lower() == "gpu":
            return cls(None, count or 1)
        return cls(model, count or 1)

    def __str__(self) -> str:
        name = self.gpu_model or ("gpu" if self.gpu_count else "any")
        return f"{name}x{self.gpu_count}" if self.gpu_count > 1 else name


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


def fits(gpu_name: ColumnElement[str], gpu_count: ColumnElement[int]) -> ColumnElement[bool]:
    """Jobs a machine with these GPUs can run: the one definition of a machine fitting a
    job's MachineKind. At least the job's GPU count, and the job's GPU model, when it
    names one, a substring of the machine's GPU name in any case (`H100` fits
    "NVIDIA H100 80GB HBM3")."""
    return and_(
        Job.gpu_count <= gpu_count,
        or_(
            Job.gpu_model.is_(None),
            func.strpos(func.lower(gpu_name), func.lower(Job.gpu_model)) > 0,
        ),
    )


def servable(m: MachineInfo) -> ColumnElement[bool]:
    """Jobs that machine `m` can run."""
    return fits(literal(m.gpu_name or "", Text), literal(m.gpu_count, Integer))


def _claimable() -> ColumnElement[bool]:
    return or_(
        and_(Job.state == "pending", Job.not_before <= func.now()),
        and_(
            Job.state == "running",
            Job.lease_expires_at < func.now(),
            Job.attempts < Job.max_attempts,  # else parked by the same statement
        ),
    )


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
        row = conn.execute(_claim_statement(), params).first()
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


@functools.cache
def _claim_statement() -> Any:
    """Built once, with bound parameters: a claim is the hot path of the queue, and
    building the statement cost about as much as running it."""
    parked = (
        update(Job)
        .where(
            Job.id.in_(
                select(Job.id)
                .where(
                    Job.state == "running",
                    Job.lease_expires_at < func.now(),
                    Job.attempts >= Job.max_attempts,
                )
                .with_for_update(skip_locked=True)
            )
        )
        .values(
            state="parked",
            finished_at=func.now(),
            error=func.concat(
                "lease of ",
                Job.lease_owner,
                " expired on attempt ",
                Job.attempts,
                " of ",
                Job.max_attempts,
            ),
        )
        .returning(Job.id)
        .cte("parked")
    )
    machine_fits = fits(bindparam("has_gpu_name", type_=Text), bindparam("has_gpus", type_=Integer))
    candidate = (
        select(Job.id)
        .where(_claimable(), machine_fits)
        .order_by(Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(Job)
        .where(Job.id == candidate)
        .values(
            state="running",
            attempts=Job.attempts + 1,
            lease_owner=bindparam("new_owner", type_=Text),
            lease_expires_at=func.now() + bindparam("new_lease", type_=Interval),
            heartbeat_at=func.now(),
            started_at=func.now(),
            # A reclaimed job keeps a note of why it ran again.
            error=case(
                (Job.state == "running", func.concat("lease of ", Job.lease_owner, " expired")),
                else_=Job.error,
            ),
        )
        .returning(*_CLAIMED)
        .add_cte(parked)  # runs although nothing refers to it (a data-modifying WITH)
    )


_CLAIMED = (
    Job.id,
    Job.sha,
    Job.attempts,
    Job.max_attempts,
    Job.repository,
    Job.benches,
    Job.filter,
    Job.profile,
    Job.gpu_model,
    Job.gpu_count,
    Job.branch,
    Job.trigger,
    Job.timeout_s,
    Job.params,
)


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
