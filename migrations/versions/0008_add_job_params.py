"""add jobs.params: a job's --param sweep, part of the work it names

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

`commitbench enqueue --param NAME=V1,V2` records the sweep with each job, so the runner
that claims it measures the same cases; the same commit with another sweep is other
work, so the column joins the unique key of a job's work (NULLs equal, as before).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORK = ["repository", "sha", "benches", "filter", "profile", "gpu_model", "gpu_count"]


def upgrade() -> None:
    op.add_column("jobs", sa.Column("params", pg.JSONB))
    op.drop_constraint("uq_jobs_work", "jobs", type_="unique")
    op.create_unique_constraint(
        "uq_jobs_work", "jobs", [*WORK, "params"], postgresql_nulls_not_distinct=True
    )


def downgrade() -> None:
    # Sweeps are dropped with the column: jobs that differed only by theirs become the
    # same work, so all but the oldest of each go first.
    op.execute(
        "DELETE FROM jobs j USING jobs k WHERE j.params IS NOT NULL AND k.id < j.id "
        "AND j.repository = k.repository AND j.sha = k.sha "
        "AND j.benches IS NOT DISTINCT FROM k.benches AND j.filter IS NOT DISTINCT FROM k.filter "
        "AND j.profile = k.profile AND j.gpu_model IS NOT DISTINCT FROM k.gpu_model "
        "AND j.gpu_count = k.gpu_count"
    )
    op.drop_constraint("uq_jobs_work", "jobs", type_="unique")
    op.drop_column("jobs", "params")
    op.create_unique_constraint("uq_jobs_work", "jobs", WORK, postgresql_nulls_not_distinct=True)
