"""add metrics.processes: the worker process each raw sample came from (issue 13)

A case can be measured in several fresh worker processes within one run; the statistics
treat the process as the unit of repetition, so each sample keeps its process index
(parallel to metrics.samples). NULL is one process: everything recorded before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("metrics", sa.Column("processes", ARRAY(sa.Integer()), nullable=True))
    op.create_check_constraint(
        op.f("ck_metrics_processes_match_n"),
        "metrics",
        "processes IS NULL OR cardinality(processes) = n",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_metrics_processes_match_n"), "metrics", type_="check")
    op.drop_column("metrics", "processes")
