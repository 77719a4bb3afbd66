"""The regressions table: written by `detect`, listed and acknowledged by users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from commitbench.errors import CommitbenchError
from commitbench.model.points import Series, Step, machine_label
from commitbench.store.tables import REGRESSION_STATES, Case, Commit, Machine, Regression


@dataclass(frozen=True)
class Listed:
    id: int
    case: str
    metric: str
    machine: str
    branch: str | None
    profile: str
    sha: str
    subject: str | None
    baseline: float
    value: float
    change_pct: float
    p_value: float | None
    state: str
    detected_at: datetime


def record(engine: Engine, series: Series, finding: Step) -> int:
    """Insert or refresh the regression of `series` at `finding.index`; returns its id.

    Idempotent: the row is keyed by (case, metric, machine, branch, profile, commit). A
    refresh keeps the state a person set, except that an undone step marks it fixed.
    """
    sha = series.shas[finding.index]
    baseline_sha = series.shas[finding.index - 1] if finding.index > 0 else None
    with engine.begin() as conn:
        case_id = conn.execute(select(Case.id).where(Case.label == series.case)).scalar_one()
        machine_id = conn.execute(
            select(Machine.id).where(Machine.fingerprint == series.machine)
        ).scalar_one()
        commits = dict(
            conn.execute(
                select(Commit.sha, Commit.id).where(
                    Commit.repository == series.repository,
                    Commit.sha.in_([s for s in (sha, baseline_sha) if s]),
                )
            ).all()
        )
        values = {
            "case_id": case_id,
            "metric": series.metric,
            "machine_id": machine_id,
            "branch": series.branch,
            "profile": series.profile,
            "commit_id": commits[sha],
            "baseline_commit_id": commits.get(baseline_sha) if baseline_sha else None,
            "baseline": finding.before,
            "value": finding.after,
            "change_pct": finding.change * 100,
            "p_value": min(1.0, finding.p_value),
            "method": finding.method,
            "state": "fixed" if finding.fixed else "open",
        }
        stmt = insert(Regression).values(values)
        refreshed = {
            k: stmt.excluded[k]
            for k in ("baseline_commit_id", "baseline", "value", "change_pct", "p_value", "method")
        }
        if finding.fixed:
            refreshed["state"] = stmt.excluded.state
        return int(
            conn.execute(
                stmt.on_conflict_do_update(
                    constraint="uq_regressions_series_commit", set_=refreshed
                ).returning(Regression.id)
            ).scalar_one()
        )


def listed(engine: Engine, state: str | None = None) -> list[Listed]:
    if state is not None and state not in REGRESSION_STATES:
        raise CommitbenchError(f"state {state!r} is not one of {', '.join(REGRESSION_STATES)}")
    query = (
        select(Regression, Case.label, Machine, Commit.sha, Commit.subject)
        .join(Case, Case.id == Regression.case_id)
        .join(Machine, Machine.id == Regression.machine_id)
        .join(Commit, Commit.id == Regression.commit_id)
        .order_by(Regression.detected_at.desc(), Regression.id.desc())
    )
    if state is not None:
        query = query.where(Regression.state == state)
    with Session(engine) as session:
        return [
            Listed(
                r.id,
                label,
                r.metric,
                machine_label(m.gpu_name, m.gpu_count, m.cpu_model),
                r.branch,
                r.profile,
                sha,
                subject,
                r.baseline,
                r.value,
                r.change_pct,
                r.p_value,
                r.state,
                r.detected_at,
            )
            for r, label, m, sha, subject in session.execute(query)
        ]


def acknowledge(engine: Engine, regression_id: int) -> None:
    with engine.begin() as conn:
        done = conn.execute(
            update(Regression)
            .where(Regression.id == regression_id)
            .values(state="acknowledged")
            .returning(Regression.id)
        ).first()
    if done is None:
        raise CommitbenchError(f"no regression with id {regression_id}")
