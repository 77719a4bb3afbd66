"""Device: GPU and CPU samples over one run, per case, downsampled to the panel width."""

from __future__ import annotations

from commitbench.grafana import builder, names

RUN_SQL = """
SELECT r.id::text
FROM runs r
WHERE $__timeFilter(r.started_at)
ORDER BY r.started_at DESC
LIMIT 500
"""

RUN_CASE_SQL = """
SELECT ca.label
FROM results rs
JOIN cases ca ON ca.id = rs.case_id
WHERE rs.run_id = NULLIF(${run:sqlstring}, '')::uuid
ORDER BY 1
"""

CASES_SQL = """
SELECT rs.started_at AS "time",
       rs.started_at + make_interval(secs => coalesce(rs.duration_s, 0)) AS "timeend",
       ca.label || ' (' || rs.status || ')' AS "text",
       rs.status AS "tags"
FROM results rs
JOIN cases ca ON ca.id = rs.case_id
WHERE rs.run_id = NULLIF(${run:sqlstring}, '')::uuid
  AND ca.label IN (${case:sqlstring})
  AND rs.started_at IS NOT NULL
  AND $__timeFilter(rs.started_at)
ORDER BY 1
"""

# One query per measure; $__interval keeps a series at most about maxDataPoints long.
# The samples are reached from the run's results through ix_device_samples_result_id_time
# (one short index range per case), not by scanning the run's samples.
# Per-GPU series of one quantity over a run: the panels differ only in the aggregate.
_GPU_HEAD = """
SELECT $__timeGroupAlias(s.time, $__interval),
       'GPU ' || coalesce(s.gpu_index::text, '-') AS "metric",
"""
_GPU_TAIL = """FROM results rs
JOIN cases ca ON ca.id = rs.case_id
JOIN device_samples s ON s.result_id = rs.id
WHERE rs.run_id = NULLIF(${run:sqlstring}, '')::uuid
  AND ca.label IN (${case:sqlstring})
  AND $__timeFilter(s.time)
GROUP BY 1, 2
ORDER BY 1, 2
"""


def _per_gpu_sql(aggregate: str) -> str:
    """`aggregate` is a constant of this module, e.g. avg(s.power_w) AS "power"."""
    return _GPU_HEAD + "       " + aggregate + "\n" + _GPU_TAIL


GPU_UTIL_SQL = _per_gpu_sql('avg(s.gpu_util_pct) AS "utilization"')

GPU_MEM_SQL = _per_gpu_sql('max(s.gpu_mem_mib) AS "memory"')

POWER_SQL = _per_gpu_sql('avg(s.power_w) AS "power"')

SM_CLOCK_SQL = _per_gpu_sql('avg(s.sm_clock_mhz) AS "SM clock"')

TEMPERATURE_SQL = _per_gpu_sql('max(s.temperature_c) AS "temperature"')

# CPU and RSS are per sampler tick, repeated on each GPU's row: averaging over the
# GPUs of a tick gives the tick's value.
CPU_SQL = """
SELECT $__timeGroupAlias(s.time, $__interval),
       avg(s.cpu_util_pct) AS "CPU utilization"
FROM results rs
JOIN cases ca ON ca.id = rs.case_id
JOIN device_samples s ON s.result_id = rs.id
WHERE rs.run_id = NULLIF(${run:sqlstring}, '')::uuid
  AND ca.label IN (${case:sqlstring})
  AND $__timeFilter(s.time)
GROUP BY 1
ORDER BY 1
"""

RSS_SQL = """
SELECT $__timeGroupAlias(s.time, $__interval),
       max(s.rss_mib) AS "resident memory"
FROM results rs
JOIN cases ca ON ca.id = rs.case_id
JOIN device_samples s ON s.result_id = rs.id
WHERE rs.run_id = NULLIF(${run:sqlstring}, '')::uuid
  AND ca.label IN (${case:sqlstring})
  AND $__timeFilter(s.time)
GROUP BY 1
ORDER BY 1
"""

MAX_DATA_POINTS = 1000

_PANELS = (
    ("GPU utilization", GPU_UTIL_SQL, "percent", "Mean GPU utilization per GPU.", 0, 0),
    ("GPU memory", GPU_MEM_SQL, "mbytes", "Peak used GPU memory per GPU (MiB).", 12, 0),
    ("Power", POWER_SQL, "watt", "Mean board power draw per GPU.", 0, 8),
    ("SM clock", SM_CLOCK_SQL, "suffix: MHz", "Mean SM clock per GPU (MHz).", 12, 8),
    ("Temperature", TEMPERATURE_SQL, "celsius", "Peak GPU temperature.", 0, 16),
    ("CPU utilization", CPU_SQL, "percent", "Mean CPU utilization of the worker.", 12, 16),
    ("Resident memory", RSS_SQL, "mbytes", "Peak resident memory of the worker.", 0, 24),
)


def build() -> builder.Json:
    run = builder.query_variable(
        "run", "Run", RUN_SQL, description="runs.id, newest first (from the Overview's runs)"
    )
    case = builder.query_variable(
        "case", "Case", RUN_CASE_SQL, multi=True, include_all=True, description="cases of the run"
    )
    case["current"] = {"text": ["All"], "value": ["$__all"]}
    panels = []
    for title, sql, unit, what, x, y in _PANELS:
        panels.append(
            builder.panel(
                "timeseries",
                title,
                f"{what} Samples of the selected cases of the run, averaged into "
                "buckets of $__interval so a series has at most about "
                f"{MAX_DATA_POINTS} points; each case is an annotation region.",
                [builder.target(sql, fmt="time_series")],
                grid=(x, y, 12, 8),
                unit=unit,
                defaults={"custom": {"drawStyle": "line", "lineWidth": 1, "spanNulls": False}},
                max_data_points=MAX_DATA_POINTS,
            )
        )
    return builder.dashboard(
        names.DEVICE_UID,
        "commitbench · Device",
        "GPU utilization, memory, power, SM clock and CPU use over one run, per case.",
        time_from="now-24h",
        variables=[run, case],
        panels=panels,
        annotations=[builder.annotation("Cases", CASES_SQL, "blue")],
    )
