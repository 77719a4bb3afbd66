"""Profiles: where a case's time went across commits (`run --trace`), and its files.

A profile is context, not a verdict: the shares say what the time of one profiled
iteration was spent on (on CUDA the kernels' device time; on CPU the operators' self CPU
time), and `commitbench explain` says what changed between two of them. A dashboard
cannot run commands, so the tables show the command to run and the sha256 of each file
(the key of `profile_artifacts` and of the file beside a CSV run).
"""

from __future__ import annotations

from commitbench.grafana import builder, common, names
from commitbench.model import profile

# Cases with a profile on the chosen repository, branches, machine and profile in the
# time range. Profile metrics are few (one per traced result), so reading them through
# the metric name's index costs little however long the history.
PROFILED_CASE_SQL = common.sql(
    """
SELECT DISTINCT ca.label
FROM metrics m
JOIN results re ON re.id = m.result_id
JOIN runs r ON r.id = re.run_id
JOIN commits cm ON cm.id = r.commit_id
JOIN cases ca ON ca.id = re.case_id
WHERE m.name = '""",
    profile.TIME_PER_ITER,
    """'
  AND re.status = 'ok'
  AND """,
    common.RUN_WHERE,
    """
ORDER BY 1
""",
)

# A commit's share of a category is its value in the series (series_points: the median
# over its runs, so with several runs the shares need not add up to exactly 100).
# Only the case's own shares (one iteration of every timed function), not those of
# each timed function (profile.<name>.share.*).
KERNELS_SQL = common.sql(
    """
SELECT sp.committed_at AS "time",
       substr(sp.metric, """,
    str(len(profile.SHARE_PREFIX) + 1),
    """) AS "metric",
       sp.value AS "value"
FROM series_points sp
WHERE sp.case_label = ${case:sqlstring}
  AND sp.metric LIKE '""",
    profile.SHARE_PREFIX,
    """%'
  AND """,
    common.SERIES_WHERE,
    """
ORDER BY sp.committed_at, sp.sha, 2
""",
)

# Each profiled commit (its newest profile), newest first: the profiled time per
# iteration, the files' sha256 and whether the database still holds them (retention),
# and the explain command against the profiled commit before it.
PROFILES_SQL = common.sql(
    """
WITH profiled AS (
  SELECT DISTINCT ON (cm.id)
         cm.committed_at, cm.sha, cm.subject, ca.label, r.id AS run_id, m.median,
         m.properties -> '""",
    profile.ARTIFACTS,
    """' AS files
  FROM metrics m
  JOIN results re ON re.id = m.result_id
  JOIN runs r ON r.id = re.run_id
  JOIN commits cm ON cm.id = r.commit_id
  JOIN cases ca ON ca.id = re.case_id
  WHERE m.name = '""",
    profile.TIME_PER_ITER,
    """'
    AND re.status = 'ok'
    AND ca.label = ${case:sqlstring}
    AND """,
    common.RUN_WHERE,
    """
  ORDER BY cm.id, r.started_at DESC
),
listed AS (
  SELECT p.*, lag(p.sha) OVER (ORDER BY p.committed_at, p.sha) AS previous
  FROM profiled p
)
SELECT l.committed_at AS "time",
       left(l.sha, 10) AS "commit",
       l.subject AS "subject",
       l.median AS "time per iteration",
       l.files ->> '""",
    profile.CHROME_TRACE,
    """' AS "chrome trace sha256",
       l.files ->> '""",
    profile.MEMORY_SNAPSHOT,
    """' AS "memory snapshot sha256",
       CASE WHEN l.files IS NULL OR l.files = '{}'::jsonb THEN 'none'
            WHEN NOT EXISTS (SELECT 1 FROM jsonb_each_text(l.files) f
                              WHERE NOT EXISTS (SELECT 1 FROM profile_artifacts pa
                                                 WHERE pa.sha256 = f.value))
            THEN 'in the database'
            ELSE 'not all in the database' END AS "files",
       CASE WHEN l.previous IS NOT NULL THEN
         'commitbench explain ' || left(l.previous, 12) || ' ' || left(l.sha, 12)
           || ' --case ''' || l.label || ''''
       END AS "explain against the previous profile",
       l.run_id::text AS "run"
FROM listed l
ORDER BY l.committed_at DESC, l.sha DESC
LIMIT 200
""",
)


def build() -> builder.Json:
    case = builder.query_variable(
        "case",
        "Case",
        PROFILED_CASE_SQL,
        description="cases.label of the cases profiled (run --trace) in the time range",
    )
    kernels = builder.panel(
        "timeseries",
        "Kernels: ${case}",
        "Where the time of one profiled iteration of the case went, per commit, by "
        "category (gemm, attention, elementwise, reduction_softmax, normalisation, "
        "memcpy_memset, communication, other; decided from the kernel or operator name): "
        "on CUDA the kernels' share of device time, on CPU the operators' share of self "
        "CPU time. Stacked to 100%. Recorded by commitbench run --trace; a commit with "
        "several profiles shows the median of each share. Where the time went, not how "
        "fast the code is: the timings are on Trends.",
        [builder.target(KERNELS_SQL, fmt="time_series")],
        grid=(0, 0, 24, 10),
        unit="percent",
        defaults={
            "min": 0,
            "max": 100,
            "custom": {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 60,
                "showPoints": "always",
                "pointSize": 4,
                "spanNulls": True,
                "stacking": {"mode": "normal", "group": "A"},
            },
        },
        options={
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )
    files = builder.panel(
        "table",
        "Profiles of ${case}",
        "Each profiled commit, newest first (its newest profile): the profiled time per "
        "iteration, the sha256 of its Chrome trace (Perfetto, chrome://tracing) and CUDA "
        "memory snapshot (pytorch.org/memory_viz), whether the database still holds them "
        "(COMMITBENCH_ARTIFACT_RETENTION_DAYS), and the command that lists what changed "
        "against the profiled commit before it (run it in a checkout with the same "
        "COMMITBENCH_DB). README: Profiles.",
        [builder.target(PROFILES_SQL)],
        grid=(0, 10, 24, 10),
        unit="none",
        overrides=[
            {
                "matcher": {"id": "byName", "options": "time"},
                "properties": [{"id": "unit", "value": "dateTimeAsIso"}],
            },
            {
                "matcher": {"id": "byName", "options": "time per iteration"},
                "properties": [{"id": "unit", "value": "s"}],
            },
        ],
    )
    return builder.dashboard(
        names.PROFILES_UID,
        "commitbench · Profiles",
        "Where a case's time went across commits (run --trace): category shares, the "
        "profile files, and the explain command between two profiles.",
        time_from="now-1y",
        variables=[*common.series_variables(), case],
        panels=[kernels, files],
    )
