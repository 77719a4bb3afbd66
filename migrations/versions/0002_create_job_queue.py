"""create the job queue of the fleet: jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("repository", sa.Text, nullable=False),
        sa.Column("sha", sa.Text, nullable=False),
        sa.Column("branch", sa.Text),
        sa.Column("benches", sa.Text),
        sa.Column("filter", sa.Text),
        sa.Column("profile", sa.Text, server_default=sa.text("'auto'"), nullable=False),
        sa.Column("trigger", sa.Text, server_default=sa.text("'manual'"), nullable=False),
        sa.Column("gpu_model", sa.Text),
        sa.Column("gpu_count", sa.Integer, server_default=sa.text("0"), nullable=False),
        sa.Column("timeout_s", sa.Float(53), server_default=sa.text("600"), nullable=False),
        sa.Column("state", sa.Text, server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer, server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer, server_default=sa.text("3"), nullable=False),
        sa.Column("lease_owner", sa.Text),
        sa.Column("lease_expires_at", TZ),
        sa.Column("heartbeat_at", TZ),
        sa.Column("not_before", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("run_id", pg.UUID(as_uuid=True)),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", TZ),
        sa.Column("finished_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint(
            "repository",
            "sha",
            "benches",
            "filter",
            "profile",
            "gpu_model",
            "gpu_count",
            name="uq_jobs_work",
            postgresql_nulls_not_distinct=True,
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'running', 'done', 'failed', 'parked')",
            name=op.f("ck_jobs_state_known"),
        ),
        sa.CheckConstraint(
            "profile IN ('smoke', 'full', 'auto')", name=op.f("ck_jobs_profile_known")
        ),
        sa.CheckConstraint(
            "trigger IN ('cron', 'ci', 'manual')", name=op.f("ck_jobs_trigger_known")
        ),
        sa.CheckConstraint(
            "sha ~ '^[0-9a-f]{40}([0-9a-f]{24})?$'", name=op.f("ck_jobs_sha_full_hex")
        ),
        sa.CheckConstraint("gpu_count >= 0", name=op.f("ck_jobs_gpu_count_non_negative")),
        sa.CheckConstraint("timeout_s > 0", name=op.f("ck_jobs_timeout_positive")),
        sa.CheckConstraint(
            "attempts >= 0 AND max_attempts >= 1", name=op.f("ck_jobs_attempts_range")
        ),
        sa.CheckConstraint(
            "state <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)",
            name=op.f("ck_jobs_running_has_lease"),
        ),
    )
    op.create_index("ix_jobs_state_id", "jobs", ["state", "id"])
    op.create_index("ix_jobs_repository_branch_id", "jobs", ["repository", "branch", "id"])


def downgrade() -> None:
    op.drop_table("jobs")
