"""Overview: latest result per case against its baseline, open regressions, runs."""

from __future__ import annotations

from commitbench.grafana import builder, common, names
from commitbench.model import profile, state

OPEN_REGRESSIONS_COUNT_SQL = """
SELECT count(*) AS "open regressions"
FROM regressions g
JOIN commits cm ON cm.id = g.commit_id
WHERE g.state = 'open'
  AND cm.repository = ${repository:sqlstring}
  AND g.profile = ${profile:sqlstring}
"""

RUN_STATUS_SQL = """
SELECT r.status AS "status", count(*) AS "runs"
FROM runs r
JOIN commits cm ON cm.id = r.commit_id
WHERE $__timeFilter(r.started_at)
  AND cm.repository = ${repository:sqlstring}
GROUP BY r.status
ORDER BY r.status
"""

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

# Each open regression with its two commits' profiles (run --trace) on the regression's
# machine and profile: whether both have one, which is what `commitbench explain` needs
# (it pairs the newest profile at each commit from one machine and profile), and then
# the command to run; else the command that records the missing one(s).
OPEN_REGRESSIONS_SQL = common.sql(
    """
SELECT g.detected_at AS "detected",
       ca.label AS "case",
       g.metric AS "metric",
       g.change_pct AS "change",
       g.baseline AS "baseline",
       g.value AS "value",
       g.p_value AS "p-value",
       left(cm.sha, 10) AS "commit",
       left(b.sha, 10) AS "baseline commit",
       cm.subject AS "subject",
       coalesce(g.branch, '') AS "branch",
       """,
    common.MACHINE_LABEL,
    """ AS "machine",
       g.method AS "method",
       CASE WHEN b.id IS NULL THEN 'no baseline commit'
            WHEN pr.head AND pr.base THEN 'both'
            WHEN pr.head THEN 'commit only'
            WHEN pr.base THEN 'baseline only'
            ELSE 'none' END AS "profiles",
       CASE WHEN pr.head AND pr.base THEN
              'commitbench explain ' || left(b.sha, 12) || ' ' || left(cm.sha, 12)
                || ' --case ''' || ca.label || ''''
            WHEN b.id IS NOT NULL THEN
              'commitbench run'
                || CASE WHEN pr.base THEN '' ELSE ' ' || left(b.sha, 12) END
                || CASE WHEN pr.head THEN '' ELSE ' ' || left(cm.sha, 12) END
                || ' --profile ' || g.profile || ' --trace --force --filter '''
                || """,
    common.EXACT_PATTERN,
    """ || ''''
       END AS "why (command)",
       g.machine_id::text AS "machine_id"
FROM regressions g
JOIN cases ca ON ca.id = g.case_id
JOIN commits cm ON cm.id = g.commit_id
JOIN machines ma ON ma.id = g.machine_id
LEFT JOIN commits b ON b.id = g.baseline_commit_id
CROSS JOIN LATERAL (
  SELECT coalesce(bool_or(r.commit_id = g.commit_id), false) AS head,
         coalesce(bool_or(r.commit_id = b.id), false) AS base
  FROM runs r
  JOIN results re ON re.run_id = r.id
  JOIN metrics m ON m.result_id = re.id
  WHERE r.commit_id IN (g.commit_id, b.id)
    AND r.machine_id = g.machine_id
    AND r.profile = g.profile
    AND re.case_id = g.case_id
    AND re.status = 'ok'
    AND m.name = '""",
    profile.TIME_PER_ITER,
    """'
) pr
WHERE g.state = 'open'
  AND cm.repository = ${repository:sqlstring}
  AND g.profile = ${profile:sqlstring}
ORDER BY g.detected_at DESC
LIMIT 200
""",
)

RUNS_SQL = common.sql(
    """
SELECT r.started_at AS "started",
       r.finished_at AS "finished",
       r.status AS "status",
       r.trigger AS "trigger",
       r.profile AS "profile",
       coalesce(r.branch, '') AS "branch",
       left(cm.sha, 10) AS "commit",
       cm.subject AS "subject",
       """,
    common.MACHINE_LABEL,
    """ AS "machine",
       (SELECT count(*) FROM results rs WHERE rs.run_id = r.id) AS "results",
       (SELECT count(*) FROM results rs
         WHERE rs.run_id = r.id AND rs.status NOT IN ('ok', 'skipped')) AS "failed",
       r.id::text AS "run",
       (extract(epoch FROM r.started_at) * 1000)::bigint AS "from_ms",
       (extract(epoch FROM coalesce(r.finished_at, now())) * 1000)::bigint AS "to_ms"
FROM runs r
JOIN commits cm ON cm.id = r.commit_id
JOIN machines ma ON ma.id = r.machine_id
WHERE $__timeFilter(r.started_at)
  AND cm.repository = ${repository:sqlstring}
ORDER BY r.started_at DESC
LIMIT 500
""",
)

_STATUS_COLORS = {
    "type": "value",
    "options": {
        "ok": {"color": "green", "index": 0},
        "failed": {"color": "red", "index": 1},
        "interrupted": {"color": "orange", "index": 2},
        "running": {"color": "blue", "index": 3},
    },
}


# The fleet's job queue (commitbench.fleet): counts per state with the oldest pending
# and longest running job, and each running job with its runner and heartbeat.
JOB_QUEUE_SQL = """
SELECT state,
       count(*) AS jobs,
       extract(epoch FROM max(now() - created_at) FILTER (WHERE state = 'pending'))
           AS "oldest pending",
       extract(epoch FROM max(now() - started_at) FILTER (WHERE state = 'running'))
           AS "longest running",
       count(*) FILTER (WHERE state = 'running' AND lease_expires_at < now())
           AS "expired leases"
FROM jobs
GROUP BY state
ORDER BY array_position(ARRAY['pending', 'running', 'done', 'failed', 'parked'], state)
"""

RUNNING_JOBS_SQL = """
SELECT id AS job, lease_owner AS runner, left(sha, 12) AS commit, branch, attempts,
       extract(epoch FROM now() - started_at) AS age,
       extract(epoch FROM now() - heartbeat_at) AS "since heartbeat"
FROM jobs
WHERE state = 'running'
ORDER BY started_at
"""


def _seconds(*fields: str) -> list[builder.Json]:
    return [
        {
            "matcher": {"id": "byName", "options": f},
            "properties": [{"id": "unit", "value": "s"}, {"id": "decimals", "value": 0}],
        }
        for f in fields
    ]


def _hidden(*fields: str) -> list[builder.Json]:
    return [
        {
            "matcher": {"id": "byName", "options": f},
            "properties": [{"id": "custom.hidden", "value": True}],
        }
        for f in fields
    ]


PROFILES_LINK = builder.link(
    "Profiles of this case",
    f"/d/{names.PROFILES_UID}/profiles?${{__url_time_range}}"
    "&${repository:queryparam}&var-branch=$__all&var-machine=${__data.fields.machine_id}"
    "&${profile:queryparam}&var-case=${__data.fields.case:percentencode}",
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
    red_when_open = {
        "mode": "absolute",
        "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
    }
    panels = [
        builder.panel(
            "stat",
            "Open regressions",
            "Regressions in state open for this repository and profile, on any branch "
            "and machine (commitbench detect writes them).",
            [builder.target(OPEN_REGRESSIONS_COUNT_SQL)],
            grid=(0, 0, 6, 5),
            unit="none",
            defaults={"thresholds": red_when_open, "color": {"mode": "thresholds"}},
            options={"colorMode": "background", "graphMode": "none", "textMode": "value"},
        ),
        builder.panel(
            "bargauge",
            "Runs by status",
            "Runs started in the time range, by status (failed: a case failed, timed out, "
            "ran out of memory or crashed).",
            [builder.target(RUN_STATUS_SQL)],
            grid=(6, 0, 18, 5),
            unit="none",
            defaults={
                "displayName": "${__data.fields.status}",
                "mappings": [_STATUS_COLORS],
                "color": {"mode": "fixed", "fixedColor": "blue"},
            },
            options={
                "orientation": "horizontal",
                "displayMode": "basic",
                "reduceOptions": {"values": True, "calcs": [], "fields": "/^runs$/"},
            },
        ),
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
                        {"id": "thresholds", "value": red_when_open},
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
        builder.panel(
            "table",
            "Open regressions",
            "Every open regression of the repository and profile, newest first: the "
            "change against the baseline and the commit it was found at. profiles: "
            "which of the two commits (the baseline commit and the commit) have a profile "
            "of the case (run --trace) on the regression's machine and profile; with both, "
            "'why (command)' is the commitbench explain command that lists the kernels or "
            "operators that changed, else the run command that records what is missing. "
            "Click a case for its profiles.",
            [builder.target(OPEN_REGRESSIONS_SQL)],
            grid=(0, 17, 24, 8),
            unit="none",
            overrides=[
                *_hidden("machine_id"),
                {
                    "matcher": {"id": "byName", "options": "case"},
                    "properties": [{"id": "links", "value": [PROFILES_LINK]}],
                },
                {
                    "matcher": {"id": "byName", "options": "change"},
                    "properties": [
                        {"id": "unit", "value": "percent"},
                        {"id": "decimals", "value": 1},
                        {
                            "id": "custom.cellOptions",
                            "value": {"type": "color-background", "mode": "basic"},
                        },
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                    ],
                },
            ],
        ),
        builder.panel(
            "table",
            "Runs in the time range",
            "Runs started in the time range with their status and how many cases failed. "
            "Click a run to see its device samples.",
            [builder.target(RUNS_SQL)],
            grid=(0, 25, 24, 10),
            unit="none",
            overrides=[
                *_hidden("from_ms", "to_ms"),
                {
                    "matcher": {"id": "byName", "options": "status"},
                    "properties": [
                        {"id": "mappings", "value": [_STATUS_COLORS]},
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                    ],
                },
                {
                    "matcher": {"id": "byName", "options": "started"},
                    "properties": [{"id": "unit", "value": "dateTimeAsIso"}],
                },
                {
                    "matcher": {"id": "byName", "options": "finished"},
                    "properties": [{"id": "unit", "value": "dateTimeAsIso"}],
                },
                {
                    "matcher": {"id": "byName", "options": "run"},
                    "properties": [
                        {
                            "id": "links",
                            "value": [
                                builder.link(
                                    "Device samples of this run",
                                    f"/d/{names.DEVICE_UID}/device?var-run=${{__value.raw}}"
                                    "&from=${__data.fields.from_ms}&to=${__data.fields.to_ms}",
                                )
                            ],
                        }
                    ],
                },
            ],
        ),
        builder.panel(
            "table",
            "Job queue",
            "The fleet's jobs (commitbench enqueue / worker) by state: how many, the oldest "
            "pending, the longest running, and running jobs whose lease has expired (their "
            "runner died; another runner will reclaim them).",
            [builder.target(JOB_QUEUE_SQL)],
            grid=(0, 35, 10, 8),
            unit="none",
            overrides=_seconds("oldest pending", "longest running"),
        ),
        builder.panel(
            "table",
            "Running jobs",
            "Each running job with its runner, commit, attempt, age and the time since its "
            "last heartbeat.",
            [builder.target(RUNNING_JOBS_SQL)],
            grid=(10, 35, 14, 8),
            unit="none",
            overrides=_seconds("age", "since heartbeat"),
        ),
    ]
    return builder.dashboard(
        names.OVERVIEW_UID,
        "commitbench · Overview",
        "Latest results against their baselines, open regressions and recent runs.",
        time_from="now-30d",
        variables=[*common.series_variables(), metric],
        panels=panels,
    )
