"""create the series_points view: a commit's value in each series

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

A series is (repository, case, metric, machine, profile). Its point at a commit is made
from every ok result of the case at that commit on that machine and profile, from every
run (any trigger or branch; an interrupted run counts for the results it completed):
value = the median (percentile_cont(0.5), linear interpolation, the same as
commitbench.model.stats.percentile) of the results' medians; runs = how many results;
n = their samples; the interval = the one result's 95% CI of its median, or with
several results the span [min ci_low, max ci_high]; branches = the distinct branches of
those runs. commitbench.model.points.commit_values computes the same for CSV results;
commitbench.store.views describes the columns for queries.

The grouping columns include the ones dashboards filter on (repository, commit time,
case label and name, metric, machine, profile), so PostgreSQL pushes those filters
below the aggregate and reads only the rows of the series asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Branch names are ordered byte-wise (COLLATE "C"), as Python sorts them.
SERIES_POINTS = """
CREATE VIEW series_points AS
SELECT cm.repository,
       cm.id AS commit_id,
       cm.sha,
       cm.parents[1] AS first_parent,
       cm.committed_at,
       cm.subject,
       ca.id AS case_id,
       ca.name AS case_name,
       ca.label AS case_label,
       m.name AS metric,
       m.unit,
       m.direction,
       r.machine_id,
       r.profile,
       min(r.started_at) AS measured_at,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY m.median) AS value,
       min(m.ci_low) AS ci_low,
       max(m.ci_high) AS ci_high,
       count(*) AS runs,
       sum(m.n) AS n,
       coalesce(
         array_agg(DISTINCT r.branch COLLATE "C" ORDER BY r.branch COLLATE "C")
           FILTER (WHERE r.branch IS NOT NULL),
         '{}'
       ) AS branches
FROM metrics m
JOIN results rs ON rs.id = m.result_id
JOIN runs r ON r.id = rs.run_id
JOIN commits cm ON cm.id = r.commit_id
JOIN cases ca ON ca.id = rs.case_id
WHERE rs.status = 'ok'
  AND m.median IS NOT NULL
GROUP BY cm.id, cm.repository, cm.sha, cm.committed_at, ca.id, ca.name, ca.label,
         m.name, m.unit, m.direction, r.machine_id, r.profile
"""


def upgrade() -> None:
    op.execute(SERIES_POINTS)


def downgrade() -> None:
    op.execute("DROP VIEW series_points")
