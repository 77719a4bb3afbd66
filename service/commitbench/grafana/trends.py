"""Trends: one metric of chosen cases across commits (time = commit time)."""

from __future__ import annotations

from commitbench.grafana import builder, common, names

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
    return builder.dashboard(
        names.TRENDS_UID,
        "commitbench · Trends",
        "A metric per case across commits, by commit time, with confidence bands and "
        "regression annotations.",
        time_from="now-1y",
        variables=[*common.series_variables(), metric, case],
        panels=[trend, commits],
        annotations=[builder.annotation("Regressions", REGRESSIONS_SQL, "red")],
    )
