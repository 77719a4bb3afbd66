"""Workloads: the built-in suite's views (names from commitbench.grafana.names).

Every query selects the cases of one workload by case name prefix and a metric by
name; both arrive as hidden constant variables, so renaming a bench or a metric means
changing commitbench.grafana.names only.
"""

from __future__ import annotations

from commitbench.grafana import builder, common, names

# A metric per case over commits: long format, one series per case and metric name
# (a bench may time several phases). The five differ only in the case prefix and the
# metric filter: timings by unit, throughputs by name pattern.
# The arguments below are variable names of this module, never user input; their
# values reach PostgreSQL only through ${...:sqlstring}.
_SERIES_HEAD = """
SELECT cm.committed_at AS "time",
       ca.label || ' ' || m.name AS "metric",
       avg(m.median) AS "value"
FROM commits cm
JOIN runs r ON r.commit_id = cm.id
JOIN results rs ON rs.run_id = r.id
JOIN cases ca ON ca.id = rs.case_id
JOIN metrics m ON m.result_id = rs.id
WHERE cm.repository = ${repository:sqlstring}
  AND $__timeFilter(cm.committed_at)
  AND r.branch = ${branch:sqlstring}
  AND r.profile = ${profile:sqlstring}
  AND r.machine_id = split_part(${machine:sqlstring}, ' #', -1)::bigint
  AND rs.status = 'ok'
"""
_SERIES_TAIL = """GROUP BY 1, 2
ORDER BY 1, 2
"""


def _series_sql(cases_var: str, metric_filter: str) -> str:
    cases = "  AND starts_with(ca.name, ${" + cases_var + ":sqlstring})\n"
    return _SERIES_HEAD + cases + "  AND " + metric_filter + "\n" + _SERIES_TAIL


OPTIMIZERS_SQL = _series_sql("optimizer_cases", "m.unit = ${time_unit:sqlstring}")

MATMUL_TFLOPS_SQL = _series_sql("matmul_cases", "m.name LIKE ${metric_tflops:sqlstring}")

TRANSFORMER_SQL = _series_sql("transformer_cases", "m.unit = ${time_unit:sqlstring}")

GENERATION_SQL = _series_sql("generation_cases", "m.unit = ${time_unit:sqlstring}")

ALLREDUCE_SQL = _series_sql("allreduce_cases", "m.name LIKE ${metric_bandwidth:sqlstring}")

MATMUL_PEAK_SQL = """
SELECT ca.label || ' ' || m.name AS "case",
       m.median AS "% of peak"
FROM (
  SELECT DISTINCT ON (rs.case_id) rs.case_id, rs.id
  FROM commits cm
  JOIN runs r ON r.commit_id = cm.id
  JOIN results rs ON rs.run_id = r.id
  JOIN cases ca ON ca.id = rs.case_id
  WHERE cm.repository = ${repository:sqlstring}
    AND $__timeFilter(cm.committed_at)
    AND r.branch = ${branch:sqlstring}
    AND r.profile = ${profile:sqlstring}
    AND r.machine_id = split_part(${machine:sqlstring}, ' #', -1)::bigint
    AND rs.status = 'ok'
    AND starts_with(ca.name, ${matmul_cases:sqlstring})
  ORDER BY rs.case_id, cm.committed_at DESC, r.started_at DESC
) latest
JOIN cases ca ON ca.id = latest.case_id
JOIN metrics m ON m.result_id = latest.id AND m.name LIKE ${metric_pct_peak:sqlstring}
ORDER BY 1
"""

# The latest result of every attention case in the range, as (row, column, value):
# the row is the case's other parameters, the column its sequence length, the value
# the median of its first timing (unit s, by name), or -1 when it ran out of memory
# (shown as OOM). The latest result is chosen before its metric is looked up: one
# metric probe per case, not per result.
ATTENTION_SQL = """
SELECT ca.name || coalesce(' ' || (
         SELECT string_agg(p.key || '=' || p.value, ',' ORDER BY p.key)
         FROM jsonb_each_text(ca.params - ${attention_column:sqlstring}) p), '') AS "config",
       ca.params ->> ${attention_column:sqlstring} AS "seq",
       CASE WHEN latest.status = 'oom' THEN -1 ELSE (
         SELECT m.median FROM metrics m
         WHERE m.result_id = latest.id AND m.unit = ${time_unit:sqlstring}
         ORDER BY m.name
         LIMIT 1) END AS "time"
FROM (
  SELECT DISTINCT ON (rs.case_id) rs.case_id, rs.id, rs.status
  FROM commits cm
  JOIN runs r ON r.commit_id = cm.id
  JOIN results rs ON rs.run_id = r.id
  JOIN cases ca ON ca.id = rs.case_id
  WHERE cm.repository = ${repository:sqlstring}
    AND $__timeFilter(cm.committed_at)
    AND r.branch = ${branch:sqlstring}
    AND r.profile = ${profile:sqlstring}
    AND r.machine_id = split_part(${machine:sqlstring}, ' #', -1)::bigint
    AND rs.status IN ('ok', 'oom')
    AND starts_with(ca.name, ${attention_cases:sqlstring})
    AND ca.params ->> ${attention_column:sqlstring} IS NOT NULL
  ORDER BY rs.case_id, cm.committed_at DESC, r.started_at DESC
) latest
JOIN cases ca ON ca.id = latest.case_id
ORDER BY length(ca.params ->> ${attention_column:sqlstring}),
         ca.params ->> ${attention_column:sqlstring}, 1
"""

CONSTANTS = (
    ("optimizer_cases", names.CASES_OPTIMIZERS),
    ("matmul_cases", names.CASES_MATMUL),
    ("transformer_cases", names.CASES_TRANSFORMER),
    ("attention_cases", names.CASES_ATTENTION),
    ("generation_cases", names.CASES_GENERATION),
    ("allreduce_cases", names.CASES_ALLREDUCE),
    ("attention_column", names.ATTENTION_COLUMN_PARAM),
    ("time_unit", names.TIME_UNIT),
    ("metric_tflops", names.METRIC_TFLOPS),
    ("metric_pct_peak", names.METRIC_PCT_PEAK),
    ("metric_bandwidth", names.METRIC_BANDWIDTH),
)

_LINES = {"custom": {"drawStyle": "line", "lineWidth": 2, "showPoints": "always", "pointSize": 4}}


def _series(
    title: str, sql: str, unit: str, what: str, grid: tuple[int, int, int, int]
) -> builder.Json:
    return builder.panel(
        "timeseries",
        title,
        f"{what} One series per case, by commit time (median of each commit's runs).",
        [builder.target(sql, fmt="time_series")],
        grid=grid,
        unit=unit,
        defaults=_LINES,
        options={
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"]}
        },
    )


def build() -> builder.Json:
    oom = {
        "type": "value",
        "options": {"-1": {"text": "OOM", "color": "dark-red", "index": 0}},
    }
    panels = [
        _series(
            "Optimizers: time per step",
            OPTIMIZERS_SQL,
            "s",
            "Optimizer step time of each implementation.",
            (0, 0, 12, 9),
        ),
        _series(
            "Matmul throughput",
            MATMUL_TFLOPS_SQL,
            "suffix: TFLOP/s",
            "Matrix multiply throughput per implementation and shape.",
            (12, 0, 12, 9),
        ),
        builder.panel(
            "bargauge",
            "Matmul: % of peak",
            "Latest matmul throughput in the range as a share of the GPU's dense peak.",
            [builder.target(MATMUL_PEAK_SQL)],
            grid=(0, 9, 12, 9),
            unit="percent",
            defaults={"min": 0, "max": 100, "displayName": "${__data.fields.case}"},
            options={
                "orientation": "horizontal",
                "displayMode": "gradient",
                "reduceOptions": {"values": True, "calcs": [], "fields": "/% of peak/"},
            },
        ),
        _series(
            "Transformer: time per step by size",
            TRANSFORMER_SQL,
            "s",
            "Training step time of the transformer at each size.",
            (12, 9, 12, 9),
        ),
        builder.panel(
            "table",
            "Attention grid",
            "Latest median time of each attention configuration (rows) per sequence "
            "length (columns), coloured as a heatmap; OOM where the case ran out of memory.",
            [builder.target(ATTENTION_SQL)],
            grid=(0, 18, 12, 9),
            unit="s",
            defaults={
                "mappings": [oom],
                "color": {"mode": "continuous-GrYlRd"},
                "custom": {"cellOptions": {"type": "color-background", "mode": "gradient"}},
            },
            transformations=[
                {
                    "id": "groupingToMatrix",
                    "options": {
                        "columnField": "seq",
                        "rowField": "config",
                        "valueField": "time",
                        "emptyValue": "null",
                    },
                }
            ],
        ),
        _series(
            "Generation latency",
            GENERATION_SQL,
            "s",
            "Decode latency of the generation cases.",
            (12, 18, 12, 9),
        ),
        _series(
            "All-reduce bus bandwidth",
            ALLREDUCE_SQL,
            "GBs",
            "All-reduce bus bandwidth per message size and GPU count.",
            (0, 27, 24, 9),
        ),
    ]
    return builder.dashboard(
        names.WORKLOADS_UID,
        "commitbench · Workloads",
        "The built-in suite: optimizers, matmul, transformer, attention, generation and "
        "all-reduce.",
        time_from="now-90d",
        variables=[
            *common.series_variables(),
            *(builder.constant_variable(n, v) for n, v in CONSTANTS),
        ],
        panels=panels,
    )
