"""Trends: one metric of chosen cases across commits (time = commit time)."""

from __future__ import annotations

from commitbench.grafana import builder, common, names
from commitbench.model import state

# One row per commit: its value in the series (series_points: the median of the
# medians of every run of it on the machine and profile) with its interval. Table
# format: the commit columns are strings, which the time series panel does not draw
# but its data link reads.
TREND_SQL = common.sql(
    r"""
SELECT sp.committed_at AS "time",
       sp.value AS "value",
       sp.ci_low AS "ci_low",
       sp.ci_high AS "ci_high",
       left(sp.sha, 10) AS "commit",
       regexp_replace(sp.repository, '\.git$', '') || '/commit/' || sp.sha AS "commit_url"
FROM series_points sp
WHERE sp.case_label IN (${case:sqlstring})
  AND sp.metric = ${metric:sqlstring}
  AND """,
    common.SERIES_WHERE,
    """
ORDER BY sp.committed_at, sp.sha
""",
)

# Grafana unit ids for the units commitbench records; anything else as a suffix.
UNIT_SQL = """
SELECT CASE m.unit
         WHEN 's' THEN 's'
         WHEN 'ms' THEN 'ms'
         WHEN 'us' THEN 'µs'
         WHEN 'ns' THEN 'ns'
         WHEN '%' THEN 'percent'
         WHEN 'MiB' THEN 'mbytes'
         WHEN 'GiB' THEN 'gbytes'
         WHEN 'GB/s' THEN 'GBs'
         ELSE 'suffix: ' || m.unit
       END AS "unit"
FROM metrics m
WHERE m.name = ${metric:sqlstring}
LIMIT 1
"""

COMMITS_SQL = common.sql(
    r"""
SELECT sp.committed_at AS "time",
       left(sp.sha, 10) AS "commit",
       sp.subject AS "subject",
       (SELECT cm.author_name FROM commits cm WHERE cm.id = sp.commit_id) AS "author",
       sp.case_label AS "case",
       sp.value AS "value",
       sp.ci_low AS "ci_low",
       sp.ci_high AS "ci_high",
       sp.unit AS "unit",
       sp.runs AS "runs",
       sp.n AS "samples",
       array_to_string(sp.branches, ', ') AS "branches",
       regexp_replace(sp.repository, '\.git$', '') || '/commit/' || sp.sha AS "commit_url"
FROM series_points sp
WHERE sp.case_label IN (${case:sqlstring})
  AND sp.metric = ${metric:sqlstring}
  AND """,
    common.SERIES_WHERE,
    """
ORDER BY sp.committed_at DESC, sp.case_label
LIMIT 500
""",
)

REGRESSIONS_SQL = common.sql(
    """
SELECT cm.committed_at AS "time",
       ca.label || ' ' || g.metric || ': ' || to_char(g.change_pct, 'SG999990.0')
         || '% against ' || coalesce(left(b.sha, 10), 'the baseline')
         || ' (' || g.method || ', ' || g.state || ')' AS "text",
       g.state AS "tags"
FROM regressions g
JOIN cases ca ON ca.id = g.case_id
JOIN commits cm ON cm.id = g.commit_id
LEFT JOIN commits b ON b.id = g.baseline_commit_id
WHERE ca.label IN (${case:sqlstring})
  AND g.metric = ${metric:sqlstring}
  AND cm.repository = ${repository:sqlstring}
  AND """,
    common.REGRESSION_WHERE,
    """
  AND $__timeFilter(cm.committed_at)
ORDER BY 1
""",
)

# The machine's state behind the chosen cases at each commit (model/state.py: one value
# per worker process, in metrics.median of its result; analysis/machinestate.py defines
# the same figures for compare and the report): the median calibration of the
# processes (start and end) and its spread, (max - min) / median in %; the mean load;
# the largest wall/CPU ratio and share of time waiting for a CPU (contention above 1.1 and
# 9%: model.state.contended) and the throttled share.
STATE_SQL = common.sql(
    """
SELECT cm.committed_at AS "time",
       percentile_cont(0.5) WITHIN GROUP (ORDER BY m.median)
         FILTER (WHERE m.name IN ('""",
    state.CALIBRATION_START,
    "', '",
    state.CALIBRATION_END,
    """')) AS "calibration_ms",
       100 * (max(m.median) FILTER (WHERE m.name IN ('""",
    state.CALIBRATION_START,
    "', '",
    state.CALIBRATION_END,
    """'))
              - min(m.median) FILTER (WHERE m.name IN ('""",
    state.CALIBRATION_START,
    "', '",
    state.CALIBRATION_END,
    """')))
         / NULLIF(percentile_cont(0.5) WITHIN GROUP (ORDER BY m.median)
                  FILTER (WHERE m.name IN ('""",
    state.CALIBRATION_START,
    "', '",
    state.CALIBRATION_END,
    """')), 0) AS "calibration_spread_pct",
       avg(m.median) FILTER (WHERE m.name = '""",
    state.LOAD,
    """') AS "load",
       max(m.median) FILTER (WHERE m.name = '""",
    state.WALL_PER_CPU,
    """') AS "wall_per_cpu",
       100 * max(m.median) FILTER (WHERE m.name = '""",
    state.RUN_WAIT,
    """') AS "run_wait_pct",
       100 * max(m.median) FILTER (WHERE m.name = '""",
    state.THROTTLED,
    """') AS "throttled_pct"
FROM metrics m
JOIN results re ON re.id = m.result_id
JOIN runs r ON r.id = re.run_id
JOIN commits cm ON cm.id = r.commit_id
JOIN cases ca ON ca.id = re.case_id
WHERE ca.label IN (${case:sqlstring})
  AND m.name LIKE 'state.%'
  AND re.status = 'ok'
  AND """,
    common.RUN_WHERE,
    """
GROUP BY cm.committed_at, cm.sha
ORDER BY cm.committed_at, cm.sha
""",
)

COMMIT_LINK = {"title": "Open commit ${__data.fields.commit}", "url": "${__data.fields.commit_url}"}


def _band() -> list[builder.Json]:
    """ci_low/ci_high drawn as a shaded band around the median, not as lines."""
    low = {
        "matcher": {"id": "byName", "options": "ci_low"},
        "properties": [
            {"id": "custom.lineWidth", "value": 0},
            {"id": "custom.showPoints", "value": "never"},
            {"id": "custom.hideFrom", "value": {"legend": True, "tooltip": False, "viz": False}},
        ],
    }
    high = {
        "matcher": {"id": "byName", "options": "ci_high"},
        "properties": [
            {"id": "custom.lineWidth", "value": 0},
            {"id": "custom.showPoints", "value": "never"},
            {"id": "custom.fillBelowTo", "value": "ci_low"},
            {"id": "custom.fillOpacity", "value": 25},
            {"id": "custom.hideFrom", "value": {"legend": True, "tooltip": False, "viz": False}},
        ],
    }
    return [low, high]


def build() -> builder.Json:
    case = builder.query_variable(
        "case",
        "Case",
        common.CASE_SQL,
        multi=True,
        description="cases.label with the metric on the latest runs; one panel each",
    )
    metric = builder.query_variable(
        "metric", "Metric", common.METRIC_SQL, description="metrics.name"
    )
    metric["current"] = {"text": names.METRIC_DEFAULT, "value": names.METRIC_DEFAULT}
    trend = builder.panel(
        "timeseries",
        "${case}: ${metric}",
        "Each commit's value of the metric on the chosen machine and profile: the median "
        "of the medians of every run of the commit (nightly, CI, re-runs), with its 95% "
        "interval as a band (with several runs, from the lowest to the highest of "
        "theirs); the commits of the chosen branches. Regressions found by commitbench "
        "detect are annotations. Click a point to open its commit.",
        [
            builder.target(TREND_SQL, ref="A"),
            builder.target(UNIT_SQL, ref="B"),
        ],
        grid=(0, 0, 24, 10),
        unit="s",
        defaults={
            "links": [COMMIT_LINK],
            "custom": {
                "drawStyle": "line",
                "lineWidth": 2,
                "showPoints": "always",
                "pointSize": 5,
                "spanNulls": True,
            },
        },
        overrides=_band(),
        transformations=[
            {
                # Units come from the metric (metrics.unit), via query B.
                "id": "configFromData",
                "options": {
                    "configRefId": "B",
                    "mappings": [{"fieldName": "unit", "handlerKey": "unit"}],
                    "applyTo": {"id": "byType", "options": "number"},
                },
            }
        ],
        options={"legend": {"displayMode": "list", "placement": "bottom"}},
        repeat="case",
    )
    commits = builder.panel(
        "table",
        "Commits",
        "The values behind the charts, newest commit first: how many runs and samples "
        "each commit value comes from, and the branches they recorded. Click a commit "
        "to open it.",
        [builder.target(COMMITS_SQL)],
        grid=(0, 10, 24, 10),
        unit="none",
        overrides=[
            {
                "matcher": {"id": "byName", "options": "commit"},
                "properties": [{"id": "links", "value": [COMMIT_LINK]}],
            },
            {
                "matcher": {"id": "byName", "options": "commit_url"},
                "properties": [{"id": "custom.hidden", "value": True}],
            },
            {
                "matcher": {"id": "byName", "options": "time"},
                "properties": [{"id": "unit", "value": "dateTimeAsIso"}],
            },
        ],
    )
    machine = builder.panel(
        "timeseries",
        "Machine state",
        "What the machine was like while the chosen cases ran, per commit: the "
        "calibration loop timed when each worker process started and ended (median over "
        "the processes, ms) and its spread ((max - min) / median, %: processes that "
        "differ in speed by themselves), the load average, wall time over CPU time of "
        "the timed calls and the share of their threads' runnable time spent waiting for "
        "a CPU (%; contention above 9%, or a wall/CPU above 1.1 where the wait is not "
        "known) and the share of GPU readings under thermal or power throttling (%). "
        "Context for the values above, never a verdict.",
        [builder.target(STATE_SQL)],
        grid=(0, 20, 24, 8),
        unit="none",
        defaults={"custom": {"drawStyle": "line", "showPoints": "always", "spanNulls": True}},
        overrides=[
            {
                "matcher": {"id": "byName", "options": "calibration_ms"},
                "properties": [{"id": "unit", "value": "ms"}],
            },
            {
                "matcher": {
                    "id": "byRegexp",
                    "options": "calibration_spread_pct|run_wait_pct|throttled_pct",
                },
                "properties": [{"id": "unit", "value": "percent"}],
            },
        ],
        options={"legend": {"displayMode": "list", "placement": "bottom"}},
    )
    return builder.dashboard(
        names.TRENDS_UID,
        "commitbench · Trends",
        "A metric per case across commits, by commit time, with confidence bands and "
        "regression annotations.",
        time_from="now-1y",
        variables=[*common.series_variables(), metric, case],
        panels=[trend, commits, machine],
        annotations=[builder.annotation("Regressions", REGRESSIONS_SQL, "red")],
    )
