"""scrub credentials from stored repository URLs: jobs.repository, jobs.error and
commits.repository

Earlier versions stored fleet URLs as given, `https://bot:TOKEN@host/repo.git`, in
`jobs.repository` and `commits.repository`, both readable by Grafana's read-only role.
They are rewritten without their `user:password@`, by the rule of runner/vcs.public_url
(copied here, frozen as of this revision); a URL in the text of `jobs.error` loses its
userinfo the same way.

Rewriting can make two rows equal under a unique constraint:
- commits (repository, sha): the row already without credentials survives, else the
  oldest (lowest id). Runs and regressions are re-pointed to it and the duplicate is
  deleted. Where a re-pointed regression meets the survivor's own for the same series
  (uq_regressions_series_commit), the one whose state is further along (fixed, then
  acknowledged, then open) stays, the survivor's on a tie.
- jobs (uq_jobs_work): of the jobs that name the same work, the most advanced stays
  (done, then failed, then running, then parked, then pending), the oldest on a tie; the
  others are deleted. A runner holding a deleted job loses its lease (`LeaseLost`) at
  its next heartbeat; what it recorded is fenced per unit like any other run.

Downgrade changes nothing: the credentials are gone on purpose.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/@]*)@", re.IGNORECASE)
# The same rule for URLs anywhere in a message (an error quoting the URL git failed on).
_USERINFO_IN_TEXT = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)

_JOB_STATE_ORDER = {"done": 0, "failed": 1, "running": 2, "parked": 3, "pending": 4}
_REGRESSION_STATE_ORDER = {"fixed": 0, "acknowledged": 1, "open": 2}

_commits = sa.table(
    "commits", sa.column("id", sa.BigInteger), sa.column("repository"), sa.column("sha")
)
_runs = sa.table("runs", sa.column("commit_id", sa.BigInteger))
_regressions = sa.table(
    "regressions",
    sa.column("id", sa.BigInteger),
    sa.column("case_id", sa.BigInteger),
    sa.column("metric"),
    sa.column("machine_id", sa.BigInteger),
    sa.column("branch"),
    sa.column("profile"),
    sa.column("commit_id", sa.BigInteger),
    sa.column("baseline_commit_id", sa.BigInteger),
    sa.column("state"),
)
_WORK = ("sha", "benches", "filter", "profile", "gpu_model", "gpu_count")
_jobs = sa.table(
    "jobs",
    sa.column("id", sa.BigInteger),
    sa.column("repository"),
    sa.column("state"),
    sa.column("error"),
    *(sa.column(name) for name in _WORK),
)


def _public_url(url: str) -> str:
    return _USERINFO.sub(r"\1", url)


def _scrub_commits(conn: sa.Connection) -> None:
    # LIKE '%@%' holds every URL with userinfo (and more): the rule itself is applied here.
    dirty = conn.execute(
        sa.select(_commits.c.id, _commits.c.repository, _commits.c.sha)
        .where(_commits.c.repository.like("%@%"))
        .order_by(_commits.c.id)
    ).all()
    for row in dirty:
        clean = _public_url(row.repository)
        if clean == row.repository:
            continue
        keep = conn.execute(
            sa.select(_commits.c.id).where(
                _commits.c.repository == clean, _commits.c.sha == row.sha
            )
        ).scalar()
        if keep is None:
            conn.execute(
                sa.update(_commits).where(_commits.c.id == row.id).values(repository=clean)
            )
        else:
            _merge_commit(conn, row.id, keep)


def _merge_commit(conn: sa.Connection, gone: int, keep: int) -> None:
    r = _regressions.c
    series = (r.case_id, r.metric, r.machine_id, r.branch, r.profile)
    for moving in conn.execute(sa.select(r.id, r.state, *series).where(r.commit_id == gone)).all():
        met = conn.execute(
            sa.select(r.id, r.state).where(
                r.commit_id == keep,
                *(column.is_not_distinct_from(getattr(moving, column.name)) for column in series),
            )
        ).first()
        if met is None:
            continue
        if _REGRESSION_STATE_ORDER[moving.state] < _REGRESSION_STATE_ORDER[met.state]:
            conn.execute(sa.delete(_regressions).where(r.id == met.id))
        else:
            conn.execute(sa.delete(_regressions).where(r.id == moving.id))
    conn.execute(sa.update(_regressions).where(r.commit_id == gone).values(commit_id=keep))
    conn.execute(
        sa.update(_regressions).where(r.baseline_commit_id == gone).values(baseline_commit_id=keep)
    )
    conn.execute(sa.update(_runs).where(_runs.c.commit_id == gone).values(commit_id=keep))
    conn.execute(sa.delete(_commits).where(_commits.c.id == gone))


def _scrub_jobs(conn: sa.Connection) -> None:
    j = _jobs.c
    columns = (j.id, j.repository, j.state, *(getattr(j, name) for name in _WORK))
    dirty = conn.execute(sa.select(*columns).where(j.repository.like("%@%"))).all()
    cleaned = {row.repository: _public_url(row.repository) for row in dirty}
    cleaned = {url: clean for url, clean in cleaned.items() if clean != url}
    if not cleaned:
        return
    # Every job that may share its work with a rewritten one: the rewritten jobs and
    # those already stored under a rewritten URL.
    rows = conn.execute(
        sa.select(*columns).where(j.repository.in_([*cleaned, *cleaned.values()]))
    ).all()
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        url = cleaned.get(row.repository, row.repository)
        groups.setdefault((url, *(getattr(row, name) for name in _WORK)), []).append(row)
    for (url, *_work), members in groups.items():
        keep = min(members, key=lambda m: (_JOB_STATE_ORDER[m.state], m.id))
        gone = [m.id for m in members if m.id != keep.id]
        if gone:
            conn.execute(sa.delete(_jobs).where(j.id.in_(gone)))
        if keep.repository != url:
            conn.execute(sa.update(_jobs).where(j.id == keep.id).values(repository=url))


def _scrub_job_errors(conn: sa.Connection) -> None:
    j = _jobs.c
    for row in conn.execute(sa.select(j.id, j.error).where(j.error.like("%@%"))).all():
        clean = _USERINFO_IN_TEXT.sub(r"\1", row.error)
        if clean != row.error:
            conn.execute(sa.update(_jobs).where(j.id == row.id).values(error=clean))


def upgrade() -> None:
    conn = op.get_bind()
    _scrub_commits(conn)
    _scrub_jobs(conn)
    _scrub_job_errors(conn)


def downgrade() -> None:
    pass
