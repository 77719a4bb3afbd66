"""create profile_artifacts: the Chrome traces and memory snapshots of `--trace`

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
KINDS = ("chrome_trace", "memory_snapshot")  # store.tables.ARTIFACT_KINDS, as of 0007


def upgrade() -> None:
    kinds = ", ".join(f"'{k}'" for k in KINDS)
    op.create_table(
        "profile_artifacts",
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("run_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("case_label", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_profile_artifacts"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_profile_artifacts_run_id_runs", ondelete="CASCADE"
        ),
        sa.CheckConstraint(
            "sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_profile_artifacts_sha256_hex")
        ),
        sa.CheckConstraint(f"kind IN ({kinds})", name=op.f("ck_profile_artifacts_kind_known")),
        sa.CheckConstraint(
            "size_bytes = octet_length(data)", name=op.f("ck_profile_artifacts_size_matches")
        ),
    )
    op.create_index("ix_profile_artifacts_run_id", "profile_artifacts", ["run_id"])
    op.create_index("ix_profile_artifacts_created_at", "profile_artifacts", ["created_at"])


def downgrade() -> None:
    op.drop_table("profile_artifacts")
