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
PROFILES_UID = "commitbench-profiles"

# Metrics as the harness records them (commitbench.harness.bench.Context.time / .record):
# ctx.time(NAME, fn, flops=, bytes=) writes NAME in seconds, NAME.tflops (TFLOP/s),
# NAME.peak_pct (% of the GPU's dense peak) and NAME.gbps (GB/s); the worker adds
# peak_rss and peak_cuda_mem (MiB). NAME is the bench's choice, so the Workloads
# panels select timings by unit and throughputs by these LIKE patterns. The all-reduce
# bench records its bandwidths itself (benches/allreduce.py: algbw and busbw, GB/s);
# the panel shows busbw, which is comparable across GPU counts.
TIME_UNIT = "s"
METRIC_TFLOPS = "%.tflops"
METRIC_PCT_PEAK = "%.peak_pct"
METRIC_BUSBW = "busbw"
# The Trends dashboard's metric when it opens (else the first metric name).
METRIC_DEFAULT = "time"

# Case name prefixes (cases.name starts with these) of the built-in workloads.
CASES_OPTIMIZERS = "optimizers."
CASES_MATMUL = "matmul."
CASES_TRANSFORMER = "transformer."
CASES_ATTENTION = "attention."
CASES_GENERATION = "generation."
CASES_ALLREDUCE = "allreduce."

# The attention grid's columns are this parameter (cases.params key); its rows are the
# case's other parameters.
ATTENTION_COLUMN_PARAM = "seq"
