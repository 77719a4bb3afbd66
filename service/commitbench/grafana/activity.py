"""The Overview's panels of what ran: runs by status, the runs in the time range, and the
fleet's job queue with its running jobs.

Separate from overview.py, which lays the dashboard out; these panels read the runs and
jobs tables, not the results.
"""

from __future__ import annotations

from commitbench.grafana import builder, common, names

RUN_STATUS_SQL = """
SELECT r.status AS "status", count(*) AS "runs"
FROM runs r
JOIN commits cm ON cm.id = r.commit_id
WHERE $__timeFilter(r.started_at)
  AND cm.repository = ${repository:sqlstring}
GROUP BY r.status
ORDER BY r.status
"""

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


def status_panel() -> builder.Json:
    """Runs started in the time range, by status."""
    return builder.panel(
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
    )


def runs_panel() -> builder.Json:
    """Each run started in the time range, linked to its device samples."""
    return builder.panel(
        "table",
        "Runs in the time range",
        "Runs started in the time range with their status and how many cases failed. "
        "Click a run to see its device samples.",
        [builder.target(RUNS_SQL)],
        grid=(0, 25, 24, 10),
        unit="none",
        overrides=[
            *builder.hidden("from_ms", "to_ms"),
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
    )


def job_queue_panel() -> builder.Json:
    """The fleet's jobs by state."""
    return builder.panel(
        "table",
        "Job queue",
        "The fleet's jobs (commitbench enqueue / worker) by state: how many, the oldest "
        "pending, the longest running, and running jobs whose lease has expired (their "
        "runner died; another runner will reclaim them).",
        [builder.target(JOB_QUEUE_SQL)],
        grid=(0, 35, 10, 8),
        unit="none",
        overrides=_seconds("oldest pending", "longest running"),
    )


def running_jobs_panel() -> builder.Json:
    """Each running job with its runner and heartbeat."""
    return builder.panel(
        "table",
        "Running jobs",
        "Each running job with its runner, commit, attempt, age and the time since its "
        "last heartbeat.",
        [builder.target(RUNNING_JOBS_SQL)],
        grid=(10, 35, 14, 8),
        unit="none",
        overrides=_seconds("age", "since heartbeat"),
    )
