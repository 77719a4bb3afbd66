"""The claim statement of the job queue, built once: one UPDATE that takes the oldest
job a machine can serve with FOR UPDATE SKIP LOCKED, and in the same statement parks
the expired jobs that are out of attempts. Apart from queue.py because it is the one
statement the queue's correctness and speed rest on; queue.claim runs it.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Interval,
    Text,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)

from commitbench.fleet.kinds import fits
from commitbench.store.tables import Job


def claimable() -> ColumnElement[bool]:
    return or_(
        and_(Job.state == "pending", Job.not_before <= func.now()),
        and_(
            Job.state == "running",
            Job.lease_expires_at < func.now(),
            Job.attempts < Job.max_attempts,  # else parked by the same statement
        ),
    )


@functools.cache
def claim_statement() -> Any:
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
        .where(claimable(), machine_fits)
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
        .returning(*CLAIMED)
        .add_cte(parked)  # runs although nothing refers to it (a data-modifying WITH)
    )


CLAIMED = (
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
