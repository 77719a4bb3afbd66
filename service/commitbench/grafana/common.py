"""Variables and SQL shared by several dashboards.

Every variable reaches SQL as `${name:sqlstring}` (quoted, quotes doubled), so no
value typed into Grafana, or passed in a URL, is ever pasted into a query unquoted.

Variables return `__text` (what the picker shows) and `__value` (what queries get): a
machine shows as its label (model.points.machine_label plus ` #id`) and its value is
machines.id; a branch shows as its name, or "(no branch)" for runs that recorded none,
whose value is ''. The branch variable offers All.

A series is selected by one fragment, pasted into each query that reads one: the
repository, machine, profile and time range, and the branch: a commit is on the branches
its runs recorded (series_points.branches), and on "(no branch)" when they recorded
none. The fragments are constants of this module joined to constant SQL; no value is
ever formatted into them.
"""

from __future__ import annotations

from commitbench.grafana import builder


def sql(*fragments: str) -> str:
    """A dashboard query joined from constant fragments of this package. The text is
    fixed when the dashboards are generated; values reach it only in Grafana, through
    ${var:sqlstring}."""
    return "".join(fragments)


# model.points.machine_label in SQL, with the id that tells machines of a kind apart.
MACHINE_LABEL = """CASE WHEN ma.gpu_name IS NOT NULL
         THEN CASE WHEN ma.gpu_count > 1 THEN ma.gpu_count || 'x ' ELSE '' END || ma.gpu_name
         ELSE coalesce(ma.cpu_model, 'unknown machine') END || ' #' || ma.id"""

# The chosen machine's id (its variable's value); NULL (no rows) before any machine.
MACHINE_ID = "NULLIF(${machine:sqlstring}, '')::bigint"

# The chosen branches as an array, and whether "(no branch)" is among them.
_BRANCHES = "ARRAY[${branch:sqlstring}]::text[]"
_NO_BRANCH = "'' IN (${branch:sqlstring})"

# A series' points (series_points AS sp) on the chosen repository, machine, profile,
# branch and time range.
SERIES_WHERE = sql(
    """sp.repository = ${repository:sqlstring}
  AND sp.machine_id = """,
    MACHINE_ID,
    """
  AND sp.profile = ${profile:sqlstring}
  AND $__timeFilter(sp.committed_at)
  AND (sp.branches && """,
    _BRANCHES,
    " OR (sp.branches = '{}' AND ",
    _NO_BRANCH,
    "))",
)

# The same for runs (runs AS r of commits AS cm), where a query starts from runs. The
# branch test is written so PostgreSQL can use the column's statistics ("(no branch)"
# unchosen folds to false), which coalesce(r.branch, '') would hide from it.
RUN_WHERE = sql(
    """cm.repository = ${repository:sqlstring}
    AND r.machine_id = """,
    MACHINE_ID,
    """
    AND r.profile = ${profile:sqlstring}
    AND $__timeFilter(cm.committed_at)
    AND (r.branch IN (${branch:sqlstring}) OR (r.branch IS NULL AND """,
    _NO_BRANCH,
    "))",
)

# The same for regressions (AS g), which keep the series' machine, branch and profile.
REGRESSION_WHERE = sql(
    """g.machine_id = """,
    MACHINE_ID,
    """
  AND g.profile = ${profile:sqlstring}
  AND (g.branch IN (${branch:sqlstring}) OR (g.branch IS NULL AND """,
    _NO_BRANCH,
    "))",
)

# model.cases.exact_pattern of a case label (ca.label) in SQL: the --filter pattern
# that chooses that case alone. tests/grafana checks the two agree.
EXACT_PATTERN = """CASE WHEN ca.label ~ '[*?[]'
              THEN regexp_replace(ca.label, '([*?[])', '[\\1]', 'g')
              ELSE '[' || left(ca.label, 1) || ']' || substr(ca.label, 2) END"""

REPOSITORY_SQL = """
SELECT DISTINCT repository FROM commits ORDER BY 1
"""

BRANCH_SQL = """
SELECT DISTINCT coalesce(r.branch, '(no branch)') AS __text, coalesce(r.branch, '') AS __value
FROM runs r
JOIN commits cm ON cm.id = r.commit_id
WHERE cm.repository = ${repository:sqlstring}
ORDER BY 2
"""

MACHINE_SQL = sql(
    "\nSELECT ",
    MACHINE_LABEL,
    """ AS __text,
       ma.id::text AS __value
FROM machines ma
ORDER BY ma.id
""",
)

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
CASE_SQL = sql(
    """
WITH recent AS (
  SELECT r.id
  FROM commits cm
  JOIN runs r ON r.commit_id = cm.id
  WHERE """,
    RUN_WHERE,
    """
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
""",
)


def series_variables() -> list[builder.Json]:
    """repository, branch, machine, profile: what identifies a series besides its case."""
    branch = builder.query_variable(
        "branch",
        "Branch",
        BRANCH_SQL,
        multi=True,
        include_all=True,
        description="runs.branch of the repository; (no branch): runs that recorded none",
    )
    branch["current"] = {"text": ["All"], "value": ["$__all"]}
    return [
        builder.query_variable(
            "repository", "Repository", REPOSITORY_SQL, description="commits.repository"
        ),
        branch,
        builder.query_variable(
            "machine", "Machine", MACHINE_SQL, description="machines: GPU (or CPU) and id"
        ),
        builder.custom_variable("profile", "Profile", ("full", "smoke"), "full"),
    ]
