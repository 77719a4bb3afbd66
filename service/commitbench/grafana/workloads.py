"""Workloads: the built-in suite's views (names from commitbench.grafana.names).

Every query selects the cases of one workload by case name prefix and a metric by
name; both arrive as hidden constant variables, so renaming a bench or a metric means
changing commitbench.grafana.names only.
"""

from __future__ import annotations

from commitbench.grafana import builder, common, names

# A metric per case over commits: long format, one series per case and metric name
# (a bench may time several phases), each point a commit value (series_points). The
# five differ only in the case prefix and the metric filter: timings by unit,
# throughputs by name. The arguments below are variable names of this module, never
# user input; their values reach PostgreSQL only through ${...:sqlstring}.
_SERIES_HEAD = common.sql(
    """
SELECT sp.committed_at AS "time",
       sp.case_label || ' ' || sp.metric AS "metric",
       sp.value AS "value"
FROM series_points sp
WHERE """,
    common.SERIES_WHERE,
    "\n",
)
_SERIES_TAIL = """ORDER BY 1, 2
"""


def _series_sql(cases_var: str, metric_filter: str) -> str:
    cases = "  AND starts_with(sp.case_name, ${" + cases_var + ":sqlstring})\n"
    return _SERIES_HEAD + cases + "  AND " + metric_filter + "\n" + _SERIES_TAIL


OPTIMIZERS_SQL = _series_sql("optimizer_cases", "sp.unit = ${time_unit:sqlstring}")

MATMUL_TFLOPS_SQL = _series_sql("matmul_cases", "sp.metric LIKE ${metric_tflops:sqlstring}")

TRANSFORMER_SQL = _series_sql("transformer_cases", "sp.unit = ${time_unit:sqlstring}")

GENERATION_SQL = _series_sql("generation_cases", "sp.unit = ${time_unit:sqlstring}")

ALLREDUCE_SQL = _series_sql("allreduce_cases", "sp.metric = ${metric_busbw:sqlstring}")

# The latest commit of each case in the range (its latest result), then that commit's
# value: one series_points lookup per case (the LIMIT keeps the lateral subquery from
# being flattened, so the commit and case reach the view's scan as index conditions).
_LATEST_HEAD = common.sql(
    """
SELECT DISTINCT ON (rs.case_id) rs.case_id, r.commit_id, rs.status
FROM commits cm
JOIN runs r ON r.commit_id = cm.id
JOIN results rs ON rs.run_id = r.id
JOIN cases ca ON ca.id = rs.case_id
WHERE """,
    common.RUN_WHERE,
    "\n",
)

MATMUL_PEAK_SQL = common.sql(
    """
SELECT ca.label || ' ' || v.metric AS "case",
       v.value AS "% of peak"
FROM (""",
    _LATEST_HEAD,
    """    AND rs.status = 'ok'
    AND starts_with(ca.name, ${matmul_cases:sqlstring})
  ORDER BY rs.case_id, cm.committed_at DESC, r.started_at DESC
) latest
JOIN cases ca ON ca.id = latest.case_id
CROSS JOIN LATERAL (
  SELECT sp.metric, sp.value
  FROM series_points sp
  WHERE sp.commit_id = latest.commit_id
    AND sp.case_id = latest.case_id
    AND sp.machine_id = """,
    common.MACHINE_ID,
    """
    AND sp.profile = ${profile:sqlstring}
    AND sp.metric LIKE ${metric_pct_peak:sqlstring}
  LIMIT 100
) v
ORDER BY 1
""",
)

# The latest commit of every attention case in the range (that of its latest result),
# as (row, column, value): the row is the case's other parameters, the column its
# sequence length, the value that commit's value of the case's first timing (unit s,
# by name), or -1 when no run of that commit measured it and one ran out of memory
# (shown as OOM).
ATTENTION_SQL = common.sql(
    """
SELECT ca.name || coalesce(' ' || (
         SELECT string_agg(p.key || '=' || p.value, ',' ORDER BY p.key)
         FROM jsonb_each_text(ca.params - ${attention_column:sqlstring}) p), '') AS "config",
       ca.params ->> ${attention_column:sqlstring} AS "seq",
       coalesce((
         SELECT sp.value
         FROM series_points sp
         WHERE sp.commit_id = latest.commit_id
           AND sp.case_id = latest.case_id
           AND sp.machine_id = """,
    common.MACHINE_ID,
    """
           AND sp.profile = ${profile:sqlstring}
           AND sp.unit = ${time_unit:sqlstring}
         ORDER BY sp.metric
         LIMIT 1), CASE WHEN latest.status = 'oom' THEN -1 END) AS "time"
FROM (""",
    _LATEST_HEAD,
    """    AND rs.status IN ('ok', 'oom')
    AND starts_with(ca.name, ${attention_cases:sqlstring})
    AND ca.params ->> ${attention_column:sqlstring} IS NOT NULL
  ORDER BY rs.case_id, cm.committed_at DESC, r.started_at DESC
) latest
JOIN cases ca ON ca.id = latest.case_id
ORDER BY length(ca.params ->> ${attention_column:sqlstring}),
         ca.params ->> ${attention_column:sqlstring}, 1
""",
)

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
    ("metric_busbw", names.METRIC_BUSBW),
)

_LINES = {"custom": {"drawStyle": "line", "lineWidth": 2, "showPoints": "always", "pointSize": 4}}


def _series(
    title: str, sql: str, unit: str, what: str, grid: tuple[int, int, int, int]
) -> builder.Json:
    return builder.panel(
        "timeseries",
        title,
        f"{what} One series per case, by commit time; each point is the commit's value "
        "(the median of the medians of every run of it).",
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
            "Matmul throughput at the latest commit in the range as a share of the GPU's "
            "dense peak (that commit's value).",
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
            "The time of each attention configuration (rows) per sequence length "
            "(columns) at the latest commit in the range (that commit's value), coloured "
            "as a heatmap; OOM where the case only ran out of memory there.",
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
            "All-reduce bus bandwidth (busbw = S/t x 2(n-1)/n, comparable across GPU "
            "counts) per message size.",
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
