"""Overview: latest result per case against its baseline, open regressions, runs.

This module lays the dashboard out and holds its main table, each case's latest value
against its baseline; the regression panels are regressions.py, the panels of runs and
fleet jobs activity.py.
"""

from __future__ import annotations

from commitbench.grafana import activity, builder, common, names, regressions
from commitbench.model import profile, state

# Only the latest 8 commits in the time range measured on the machine and profile (on
# the chosen branches) are read, so the cost does not grow with the range. Values are
# commit values (series_points). Baseline: the median of a case's values at those
# commits before its latest (up to 7), so one noisy night does not move it. "worse by"
# is the change signed so that positive is worse whatever the metric's direction. The
# machine's state (state.*: load, calibration, ...) is no value of the code, and a
# profile's figures (profile.*) say where the time went, not how fast: both left out.
LATEST_SQL = common.sql(
    """
WITH recent AS (
  SELECT cm.id
  FROM commits cm
  WHERE EXISTS (
    SELECT 1 FROM runs r
    WHERE r.commit_id = cm.id
    AND """,
    common.RUN_WHERE,
    """
  )
  ORDER BY cm.committed_at DESC
  LIMIT 8
),
series AS (
  SELECT sp.case_id, sp.case_label, sp.metric, sp.unit, sp.direction, sp.value, sp.sha,
         sp.runs,
         row_number() OVER (
           PARTITION BY sp.case_id, sp.metric, sp.unit, sp.direction
           ORDER BY sp.committed_at DESC, sp.sha DESC
         ) AS age
  FROM series_points sp
  WHERE sp.commit_id = ANY (ARRAY(SELECT id FROM recent))
    AND sp.metric IN (${metric:sqlstring})
    AND sp.metric NOT LIKE '""",
    state.PREFIX,
    """%'
    AND sp.metric NOT LIKE '""",
    profile.PREFIX,
    """%'
    AND """,
    common.SERIES_WHERE,
    """
),
-- One pass per series: its latest value (age 1) and the median of the ones before. (A
-- join of the two misleads the planner into re-aggregating once per row.)
latest AS (
  SELECT case_id, case_label, metric, unit, direction,
         min(value) FILTER (WHERE age = 1) AS value,
         min(sha) FILTER (WHERE age = 1) AS sha,
         min(runs) FILTER (WHERE age = 1) AS runs,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY value) FILTER (WHERE age > 1) AS baseline,
         count(*) FILTER (WHERE age > 1) AS n
  FROM series
  GROUP BY case_id, case_label, metric, unit, direction
)
SELECT s.case_label AS "case",
       s.metric AS "metric",
       s.unit AS "unit",
       left(s.sha, 10) AS "commit",
       s.value AS "latest",
       s.runs AS "runs",
       s.baseline AS "baseline",
       s.n AS "baseline commits",
       CASE WHEN s.baseline > 0 THEN
         CASE s.direction
           WHEN 'lower' THEN 100 * (s.value / s.baseline - 1)
           ELSE 100 * (1 - s.value / s.baseline)
         END
       END AS "worse by",
       (SELECT count(*)
          FROM regressions g
         WHERE g.case_id = s.case_id
           AND g.metric = s.metric
           AND """,
    common.REGRESSION_WHERE,
    """
           AND g.state = 'open') AS "open regressions"
FROM latest s
ORDER BY "open regressions" DESC, "worse by" DESC NULLS LAST, s.case_label
""",
)

TRENDS_LINK = builder.link(
    "Trends of this case",
    f"/d/{names.TRENDS_UID}/trends?${{__url_time_range}}"
    "&${repository:queryparam}&${branch:queryparam}&${machine:queryparam}"
    "&${profile:queryparam}&var-case=${__data.fields.case:percentencode}"
    "&var-metric=${__data.fields.metric:percentencode}",
)


def build() -> builder.Json:
    metric = builder.query_variable(
        "metric",
        "Metric",
        common.METRIC_SQL,
        multi=True,
        include_all=True,
        description="metrics.name (all by default)",
    )
    metric["current"] = {"text": ["All"], "value": ["$__all"]}
    panels = [
        regressions.count_panel(),
        activity.status_panel(),
        builder.panel(
            "table",
            "Latest result per case against its baseline",
            "For the chosen repository, branches, machine, profile and metrics: each case's "
            "value at the latest of the last 8 commits measured in the time range, and its "
            "baseline, the median of its values at the commits before. A commit's value is "
            "the median of the medians of every run of it (runs: how many). 'worse by' is "
            "positive when the latest is worse (slower, or lower throughput). Rows with "
            "open regressions come first and are red.",
            [builder.target(LATEST_SQL)],
            grid=(0, 5, 24, 12),
            unit="none",
            defaults={"decimals": 4, "links": [TRENDS_LINK]},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "worse by"},
                    "properties": [
                        {"id": "unit", "value": "percent"},
                        {"id": "decimals", "value": 1},
                        {
                            "id": "thresholds",
                            "value": {
                                "mode": "absolute",
                                "steps": [
                                    {"color": "green", "value": None},
                                    {"color": "orange", "value": 5},
                                    {"color": "red", "value": 10},
                                ],
                            },
                        },
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                    ],
                },
                {
                    "matcher": {"id": "byName", "options": "open regressions"},
                    "properties": [
                        {"id": "decimals", "value": 0},
                        {"id": "thresholds", "value": regressions.RED_WHEN_OPEN},
                        {
                            "id": "custom.cellOptions",
                            "value": {"type": "color-background", "mode": "basic"},
                        },
                    ],
                },
                {
                    "matcher": {"id": "byName", "options": "baseline commits"},
                    "properties": [{"id": "decimals", "value": 0}],
                },
                {
                    "matcher": {"id": "byName", "options": "runs"},
                    "properties": [{"id": "decimals", "value": 0}],
                },
            ],
        ),
        regressions.table_panel(),
        activity.runs_panel(),
        activity.job_queue_panel(),
        activity.running_jobs_panel(),
    ]
    return builder.dashboard(
        names.OVERVIEW_UID,
        "commitbench · Overview",
        "Latest results against their baselines, open regressions and recent runs.",
        time_from="now-30d",
        variables=[*common.series_variables(), metric],
        panels=panels,
    )
