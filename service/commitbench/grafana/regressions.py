"""The Overview's regression panels: how many regressions are open, and each open one
with the profiles of its two commits and the command that explains it (or records what
is missing).

Separate from overview.py, which lays the dashboard out; these panels read the
regressions table that `commitbench detect` writes.
"""

from __future__ import annotations

from commitbench.grafana import builder, common, names
from commitbench.model import profile

OPEN_REGRESSIONS_COUNT_SQL = """
SELECT count(*) AS "open regressions"
FROM regressions g
JOIN commits cm ON cm.id = g.commit_id
WHERE g.state = 'open'
  AND cm.repository = ${repository:sqlstring}
  AND g.profile = ${profile:sqlstring}
"""

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

PROFILES_LINK = builder.link(
    "Profiles of this case",
    f"/d/{names.PROFILES_UID}/profiles?${{__url_time_range}}"
    "&${repository:queryparam}&var-branch=$__all&var-machine=${__data.fields.machine_id}"
    "&${profile:queryparam}&var-case=${__data.fields.case:percentencode}",
)


RED_WHEN_OPEN = {
    "mode": "absolute",
    "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
}


def count_panel() -> builder.Json:
    """The stat of open regressions, red from one."""
    return builder.panel(
        "stat",
        "Open regressions",
        "Regressions in state open for this repository and profile, on any branch "
        "and machine (commitbench detect writes them).",
        [builder.target(OPEN_REGRESSIONS_COUNT_SQL)],
        grid=(0, 0, 6, 5),
        unit="none",
        defaults={"thresholds": RED_WHEN_OPEN, "color": {"mode": "thresholds"}},
        options={"colorMode": "background", "graphMode": "none", "textMode": "value"},
    )


def table_panel() -> builder.Json:
    """Every open regression, newest first, with its profiles and command."""
    return builder.panel(
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
            *builder.hidden("machine_id"),
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
    )
