"""Variables and SQL shared by several dashboards.

Every variable reaches SQL as `${name:sqlstring}` (quoted, quotes doubled), so no
value typed into Grafana, or passed in a URL, is ever pasted into a query unquoted.
A machine is chosen by its label `<GPU or CPU model> #<id>`; queries take the id
after the last ' #'.
"""

from __future__ import annotations

from commitbench.grafana import builder

REPOSITORY_SQL = """
SELECT DISTINCT repository FROM commits ORDER BY 1
"""

BRANCH_SQL = """
SELECT DISTINCT r.branch
FROM runs r
JOIN commits cm ON cm.id = r.commit_id
WHERE cm.repository = ${repository:sqlstring} AND r.branch IS NOT NULL
ORDER BY 1
"""

MACHINE_SQL = """
SELECT coalesce(m.gpu_name, m.cpu_model, 'unknown') || ' #' || m.id
FROM machines m
ORDER BY m.id
"""

# A loose index scan over ix_metrics_name: one index probe per distinct name instead
# of reading every metric row (millions after a few years).
METRIC_SQL = """
WITH RECURSIVE names(name) AS (
  (SELECT name FROM metrics ORDER BY name LIMIT 1)
  UNION ALL
  SELECT (SELECT m.name FROM metrics m WHERE m.name > names.name ORDER BY m.name LIMIT 1)
  FROM names
  WHERE names.name IS NOT NULL
)
SELECT name FROM names WHERE name IS NOT NULL
"""

# Cases that recorded the chosen metric on the series' latest 8 runs in the time range.
# Bounded on purpose: "every case that ever recorded it" costs a scan of a case's whole
# history for each case that never did (a second on five years of nightly runs).
CASE_SQL = """
WITH recent AS (
  SELECT r.id
  FROM commits cm
  JOIN runs r ON r.commit_id = cm.id
  WHERE cm.repository = ${repository:sqlstring}
    AND $__timeFilter(cm.committed_at)
    AND r.branch = ${branch:sqlstring}
    AND r.profile = ${profile:sqlstring}
    AND r.machine_id = split_part(${machine:sqlstring}, ' #', -1)::bigint
  ORDER BY cm.committed_at DESC, r.started_at DESC
  LIMIT 8
)
SELECT DISTINCT ca.label
FROM recent
JOIN results rs ON rs.run_id = recent.id
JOIN cases ca ON ca.id = rs.case_id
JOIN metrics m ON m.result_id = rs.id
WHERE rs.status = 'ok' AND m.name = ${metric:sqlstring}
ORDER BY 1
"""


def series_variables() -> list[builder.Json]:
    """repository, branch, machine, profile: what identifies a series besides its case."""
    return [
        builder.query_variable(
            "repository", "Repository", REPOSITORY_SQL, description="commits.repository"
        ),
        builder.query_variable(
            "branch", "Branch", BRANCH_SQL, description="runs.branch of the repository"
        ),
        builder.query_variable(
            "machine", "Machine", MACHINE_SQL, description="machines: GPU (or CPU) and id"
        ),
        builder.custom_variable("profile", "Profile", ("full", "smoke"), "full"),
    ]
