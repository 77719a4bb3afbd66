"""Names the dashboards depend on, in one place.

The data source uid is the contract between grafana/provisioning/datasources and every
panel. The workload names are what the built-in bench suite (benches/) is expected to
record: a case name prefix (cases.name, `module.function`) and metric names
(metrics.name). They reach the SQL as hidden constant dashboard variables, so changing
one here changes every query that uses it and no SQL text is assembled in Python.
"""

from __future__ import annotations

DATASOURCE_UID = "commitbench-pg"
DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
FOLDER = "commitbench"
TAGS = ("commitbench",)

OVERVIEW_UID = "commitbench-overview"
TRENDS_UID = "commitbench-trends"
DEVICE_UID = "commitbench-device"
WORKLOADS_UID = "commitbench-workloads"

# Metric names (metrics.name) recorded by ctx.time / ctx.record in the bench suite.
METRIC_TIME = "time"  # seconds per call, lower is better
METRIC_TFLOPS = "tflops"  # TFLOP/s derived from flops=
METRIC_PCT_PEAK = "pct_peak"  # % of the GPU's dense peak
METRIC_TOKENS_PER_S = "tokens_per_s"
METRIC_PEAK_MEM = "peak_mem"  # MiB
METRIC_BANDWIDTH = "bandwidth"  # GB/s (bus bandwidth of a collective)

# Case name prefixes (cases.name starts with these) of the built-in workloads.
CASES_OPTIMIZERS = "optimizers."
CASES_MATMUL = "matmul."
CASES_TRANSFORMER = "transformer."
CASES_ATTENTION = "attention."
CASES_GENERATION = "generation."
CASES_ALLREDUCE = "allreduce."

# Parameter names (cases.params keys) the attention grid is laid out by.
ATTENTION_ROW_PARAMS = ("impl", "d")
ATTENTION_COLUMN_PARAM = "seq"
