"""Dashboard query latency on five years of nightly history (not run in CI).

    python perf/dashboard.py                 # full scale: 2,000 commits x 300 cases x 4
                                             # metrics, ~20 million device samples
    python perf/dashboard.py --scale 0.02    # a quick check (40 commits)
    python perf/dashboard.py --keep          # keep the database (printed) for reuse:
    python perf/dashboard.py --database cb_perf_xxx   # time an existing one, no load
    python perf/dashboard.py --baseline e97b7a4       # also time the dashboards of a commit

Fills a throwaway database (migrated by Alembic) with generate_series on the server,
then runs every panel target, annotation and variable query of every dashboard with
its default time range and variables, as the read-only role in a READ ONLY
transaction: a warm-up, then --repeat timed executions (client wall time, rows
fetched). Prints median and p95 per query, the slowest five, points per series, and
the ratios against the same data in the shape of the Hugging Face transformers
benchmark tables (JSON measurements, no time index, no downsampling) in schema `hf`.
With --baseline REV it also times the dashboards committed at REV (`git show
REV:grafana/dashboards/*.json`) on the same database in the same run, and prints each
query's p95 before and after (issue 11: e97b7a4, the queries before series_points).

Targets (issue 6): every query p95 <= 50 ms; no series longer than about 2,000 points.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from commitbench.grafana import dashboards
from commitbench.grafana.builder import Json
from commitbench.grafana.expand import QueryContext, expand
from commitbench.grafana.queries import Query, contexts, queries, resolve_variables, time_range
from commitbench.store import engine as dbengine
from commitbench.store import migrate, roles

ADMIN_URL = os.environ.get(
    "COMMITBENCH_TEST_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TARGET_P95_MS = 50.0
TARGET_POINTS = 2000
COMMITS_FULL = 2000
CASES_PER_WORKLOAD = 50  # x 6 workloads = 300 cases
SAMPLES_FULL = 20_000_000
GPUS = 2
NIGHT_S = 5 * 365.25 * 86400 / COMMITS_FULL  # five years of nightly commits

Conn = psycopg.Connection[tuple[Any, ...]]

# -- loading (all server-side; parameters bound, never formatted into SQL) -------------

LOAD_STEPS: list[tuple[str, str]] = [
    (
        "machines",
        """
        INSERT INTO machines (fingerprint, gpu_name, gpu_count, gpu_memory_mib, cpu_model,
                              cpu_count, ram_mib)
        VALUES (repeat('a', 64), 'NVIDIA H100 80GB HBM3', 2, 81559, 'AMD EPYC 9454', 96, 1048576),
               (repeat('b', 64), NULL, 0, NULL, 'Intel Xeon', 4, 16384)
        """,
    ),
    (
        "commits",
        """
        INSERT INTO commits (repository, sha, parents, author_name, authored_at, committed_at,
                             subject)
        SELECT 'https://example.com/acme/model.git',
               md5(i::text) || left(md5('x' || i), 8),
               '{}', 'Ada',
               now() - make_interval(secs => (%(commits)s - i) * %(night)s + 3900),
               now() - make_interval(secs => (%(commits)s - i) * %(night)s + 3600),
               'Change number ' || i
        FROM generate_series(1, %(commits)s) i
        ORDER BY i
        """,
    ),
    (
        "runs",
        """
        INSERT INTO runs (id, commit_id, machine_id, branch, trigger, profile, environment,
                          started_at, finished_at, status)
        SELECT gen_random_uuid(), c.id, m.id, 'main', 'cron', 'full', '{"torch": "2.13.0"}',
               c.committed_at + interval '10 minutes',
               c.committed_at + interval '10 minutes' + make_interval(secs => 2 * %(cases)s),
               'ok'
        FROM commits c, machines m
        WHERE m.fingerprint = repeat('a', 64)
        ORDER BY c.committed_at
        """,
    ),
    (
        "cases",
        """
        INSERT INTO cases (name, params, label)
        SELECT w.name,
               CASE WHEN w.name = 'attention.attention'
                    THEN jsonb_build_object('d', 64, 'impl', 'impl' || (k %% 5),
                                            'seq', 256 * (2 ^ (k / 5))::int)
                    ELSE jsonb_build_object('i', k) END,
               CASE WHEN w.name = 'attention.attention'
                    THEN w.name || '[d=64,impl=impl' || (k %% 5) || ',seq='
                         || 256 * (2 ^ (k / 5))::int || ']'
                    ELSE w.name || '[i=' || k || ']' END
        FROM unnest(ARRAY['optimizers.adamw', 'matmul.matmul', 'transformer.step',
                          'attention.attention', 'generation.decode',
                          'allreduce.allreduce']) WITH ORDINALITY w(name, o),
             generate_series(0, %(per_workload)s - 1) k
        ORDER BY w.o, k
        """,
    ),
    (
        "results",
        """
        INSERT INTO results (run_id, case_id, status, duration_s, started_at)
        SELECT r.id, ca.id,
               CASE WHEN ca.name = 'attention.attention' AND (ca.params ->> 'seq')::int >= 65536
                    THEN 'oom' ELSE 'ok' END,
               1.7, r.started_at + make_interval(secs => 2 * (ca.id - 1))
        FROM runs r CROSS JOIN cases ca
        ORDER BY r.started_at, ca.id
        """,
    ),
    (
        "metrics",
        """
        INSERT INTO metrics (result_id, name, unit, direction, n, mean, median, stddev, min,
                             max, ci_low, ci_high, samples)
        SELECT rs.id, m.name, m.unit, m.direction, 10, v.v, v.v, v.v * 0.01, v.v * 0.98,
               v.v * 1.02, v.v * 0.99, v.v * 1.01, array_fill(v.v, ARRAY[10])
        FROM results rs
        JOIN cases ca ON ca.id = rs.case_id
        CROSS JOIN LATERAL (VALUES
          -- As the harness names them: ctx.time(T, ..., flops=) writes T, T.tflops and
          -- T.peak_pct; the worker adds peak_cuda_mem; the all-reduce bench records
          -- busbw (benches/allreduce.py).
          (split_part(ca.name, '.', 2), 's', 'lower', 0.001 * (1 + ca.id %% 17)),
          ('peak_cuda_mem', 'MiB', 'lower', 1024.0 * (1 + ca.id %% 5)),
          (CASE WHEN ca.name = 'generation.decode' THEN 'tokens_per_s'
                WHEN ca.name = 'allreduce.allreduce' THEN 'busbw'
                ELSE split_part(ca.name, '.', 2) || '.tflops' END,
           CASE WHEN ca.name = 'generation.decode' THEN 'tokens/s'
                WHEN ca.name = 'allreduce.allreduce' THEN 'GB/s' ELSE 'TFLOP/s' END,
           'higher', 100.0 + ca.id %% 400),
          (split_part(ca.name, '.', 2) || '.peak_pct', '%%', 'higher', 20.0 + ca.id %% 60)
        ) AS m(name, unit, direction, base)
        CROSS JOIN LATERAL (SELECT m.base * (0.97 + 0.06 * random()) AS v) v
        WHERE rs.status = 'ok'
        """,
    ),
    (
        "regressions",
        """
        INSERT INTO regressions (case_id, metric, machine_id, branch, profile, commit_id,
                                 baseline_commit_id, baseline, value, change_pct, p_value,
                                 method, detected_at, state)
        SELECT ca.id, split_part(ca.name, '.', 2), r.machine_id, 'main', 'full', c.id,
               c.id - 1, 1.0, 1.1, 10.0,
               0.01, 'e-divisive', c.committed_at + interval '2 hours',
               CASE WHEN c.id %% 5 = 0 THEN 'open' ELSE 'fixed' END
        FROM commits c
        JOIN runs r ON r.commit_id = c.id
        JOIN cases ca ON (c.id * 7 + ca.id) %% 997 = 0
        WHERE c.id > 1
        """,
    ),
]

# One batch of runs' device samples: GPUS rows per tick, ticks 100 ms apart per result.
SAMPLES_SQL = """
INSERT INTO device_samples (run_id, result_id, time, gpu_index, gpu_util_pct, gpu_mem_mib,
                            power_w, sm_clock_mhz, temperature_c, throttle_reasons,
                            cpu_util_pct, rss_mib)
SELECT rs.run_id, rs.id, rs.started_at + t * interval '100 milliseconds', g,
       60 + 40 * random(), 20000 + 10 * t, 300 + 400 * random(), 1980, 55 + 0.1 * t, 0,
       100 * random(), 3000 + t
FROM results rs
JOIN runs r ON r.id = rs.run_id
CROSS JOIN generate_series(0, %(ticks)s - 1) t
CROSS JOIN generate_series(0, %(gpus)s - 1) g
WHERE r.started_at >= %(lo)s AND r.started_at < %(hi)s
ORDER BY rs.started_at, t, g
"""

HF_SCHEMA = [
    "CREATE SCHEMA hf",
    """CREATE TABLE hf.benchmarks (
         benchmark_id SERIAL PRIMARY KEY, repository VARCHAR(255), branch VARCHAR(255),
         commit_id VARCHAR(72), commit_message VARCHAR(70), metadata jsonb,
         created_at timestamp without time zone NOT NULL
           DEFAULT (current_timestamp AT TIME ZONE 'UTC'))""",
    "CREATE INDEX benchmarks_benchmark_id_idx ON hf.benchmarks (benchmark_id)",
    "CREATE INDEX benchmarks_branch_idx ON hf.benchmarks (branch)",
    """CREATE TABLE hf.model_measurements (
         measurement_id SERIAL PRIMARY KEY,
         benchmark_id int REFERENCES hf.benchmarks (benchmark_id), measurements jsonb,
         time timestamp without time zone NOT NULL
           DEFAULT (current_timestamp AT TIME ZONE 'UTC'))""",
    "CREATE INDEX model_measurements_branch_idx ON hf.model_measurements (benchmark_id)",
    """CREATE TABLE hf.device_measurements (
         measurement_id SERIAL PRIMARY KEY,
         benchmark_id int REFERENCES hf.benchmarks (benchmark_id),
         cpu_util double precision, mem_megabytes double precision,
         gpu_util double precision, gpu_mem_megabytes double precision,
         time timestamp without time zone NOT NULL
           DEFAULT (current_timestamp AT TIME ZONE 'UTC'))""",
    "CREATE INDEX device_measurements_branch_idx ON hf.device_measurements (benchmark_id)",
    """INSERT INTO hf.benchmarks (benchmark_id, repository, branch, commit_id, commit_message,
                                  metadata, created_at)
       SELECT rs.id, c.repository, r.branch, c.sha, left(c.subject, 70),
              jsonb_build_object('gpu_name', m.gpu_name, 'case', ca.label,
                                 'profile', r.profile),
              rs.started_at AT TIME ZONE 'UTC'
       FROM results rs JOIN runs r ON r.id = rs.run_id JOIN commits c ON c.id = r.commit_id
       JOIN cases ca ON ca.id = rs.case_id JOIN machines m ON m.id = r.machine_id
       ORDER BY rs.id""",
    """INSERT INTO hf.model_measurements (benchmark_id, measurements, time)
       SELECT mt.result_id, jsonb_object_agg(mt.name, mt.median),
              min(rs.started_at) AT TIME ZONE 'UTC'
       FROM metrics mt JOIN results rs ON rs.id = mt.result_id
       GROUP BY mt.result_id ORDER BY mt.result_id""",
    """INSERT INTO hf.device_measurements (benchmark_id, cpu_util, mem_megabytes, gpu_util,
                                           gpu_mem_megabytes, time)
       SELECT result_id, cpu_util_pct, rss_mib, gpu_util_pct, gpu_mem_mib,
              time AT TIME ZONE 'UTC'
       FROM device_samples""",
]

# The Hugging Face dashboards' queries (one metric of one benchmark over the branch's
# commits; every device measurement of the branch), with our case label in metadata.
HF_TREND_SQL = """
SELECT CAST(m.measurements ->> %(metric)s AS double precision) AS "value",
       left(b.commit_id, 7) AS "commit", m.time
FROM hf.benchmarks AS b
JOIN hf.model_measurements AS m ON b.benchmark_id = m.benchmark_id
WHERE b.branch = 'main' AND b.metadata ->> 'gpu_name' = %(gpu)s AND b.metadata ->> 'case' = %(case)s
ORDER BY b.benchmark_id DESC
LIMIT %(limit)s
"""
HF_DEVICE_SQL = """
SELECT d.gpu_util, d.time
FROM hf.benchmarks AS b
JOIN hf.device_measurements AS d ON b.benchmark_id = d.benchmark_id
WHERE b.branch = 'main'
"""


def psycopg_url(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def admin(statement: sql.Composable) -> None:
    with psycopg.connect(psycopg_url(make_url(ADMIN_URL)), autocommit=True) as conn:
        conn.execute(statement)


def step(label: str, action: Callable[[], object]) -> None:
    start = time.perf_counter()
    action()
    print(f"  {label:<28} {time.perf_counter() - start:8.1f} s", flush=True)


def load(url: URL, scale: float) -> None:
    commits = max(20, round(COMMITS_FULL * scale))
    cases = 6 * CASES_PER_WORKLOAD
    ticks = max(1, round(SAMPLES_FULL * scale / (commits * cases * GPUS)))
    print(f"loading {commits} commits x {cases} cases, {ticks} ticks x {GPUS} GPUs per result")
    engine = dbengine.make_engine(url)
    step("migrate", lambda: migrate.upgrade(engine))
    engine.dispose()
    params = {
        "commits": commits,
        "night": NIGHT_S,
        "cases": cases,
        "per_workload": CASES_PER_WORKLOAD,
        "ticks": ticks,
        "gpus": GPUS,
    }
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for label, statement in LOAD_STEPS:
            step(label, lambda s=statement: conn.execute(s.encode(), params))
        bounds = [
            r[0] for r in conn.execute("SELECT started_at FROM runs ORDER BY started_at").fetchall()
        ]
        batch = max(1, len(bounds) // 20)
        for i in range(0, len(bounds), batch):
            lo = bounds[i]
            hi = (
                bounds[i + batch]
                if i + batch < len(bounds)
                else datetime.max.replace(tzinfo=timezone.utc)
            )
            step(
                f"device_samples {i + batch}/{len(bounds)}",
                lambda lo=lo, hi=hi: conn.execute(
                    SAMPLES_SQL.encode(), {**params, "lo": lo, "hi": hi}
                ),
            )
        for statement in HF_SCHEMA:
            step(
                "hf: " + statement.split("(")[0].split()[-1][:20],
                lambda s=statement: conn.execute(s.encode()),
            )
        step("vacuum analyze", lambda: conn.execute("VACUUM ANALYZE"))
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM commits), (SELECT count(*) FROM results), "
            "(SELECT count(*) FROM metrics), (SELECT count(*) FROM device_samples), "
            "pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()
    assert counts is not None
    commits_n, results_n, metrics_n, samples_n, size = counts
    print(
        f"loaded: commits {commits_n}, results {results_n}, metrics {metrics_n}, "
        f"device samples {samples_n}, database size {size}"
    )


# -- timing ---------------------------------------------------------------------------


def run_readonly(
    conn: Conn, text: str, params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        cur.execute(text.encode(), params)
        return cur.fetchall()


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm-up: plans and pages cached, as on a dashboard viewed more than once
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def longest_series(query: Query, conn: Conn, text: str) -> int:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        cur.execute(text.encode())
        columns = [d.name for d in cur.description or ()]
        rows = cur.fetchall()
    if query.panel_type != "timeseries" or "time" not in columns:
        return len(rows)
    if "metric" in columns:
        i = columns.index("metric")
        return max(Counter(r[i] for r in rows).values(), default=0)
    return len(rows)


def columns_and_rows(conn: Conn, text: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        cur.execute(text.encode())
        return [d.name for d in cur.description or ()], cur.fetchall()


def committed_dashboards(rev: str) -> dict[str, Json]:
    """The dashboards as committed at `rev`."""
    out = {}
    for name in dashboards():
        text = subprocess.run(
            ["git", "show", f"{rev}:grafana/dashboards/{name}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        out[name] = json.loads(text)
    return out


def measure(
    conn: Conn, repeat: int, now: datetime, boards: dict[str, Json] | None = None
) -> list[tuple[str, float, float, int]]:
    results = []
    for dashboard in (boards or dashboards()).values():
        frm, to = time_range(dashboard, now)
        variables = resolve_variables(dashboard, lambda s: columns_and_rows(conn, s), frm, to)
        for query in queries(dashboard):
            for n, ctx in enumerate(contexts(query, variables, frm, to)):
                if n:  # a repeated panel: the first copy stands for all
                    break
                text = expand(query.sql, ctx)
                times = timed(lambda t=text: run_readonly(conn, t), repeat)
                points = longest_series(query, conn, text)
                results.append((query.name, statistics.median(times), p95(times), points))
    return results


def device_over_run(conn: Conn, repeat: int) -> list[tuple[str, float, float, int]]:
    """The Device panels as opened from the Overview's run link: range = the run's span."""
    device = dashboards()["device.json"]
    span = run_readonly(
        conn, "SELECT started_at, finished_at FROM runs ORDER BY started_at DESC LIMIT 1"
    )
    frm, to = span[0]
    variables = resolve_variables(device, lambda s: columns_and_rows(conn, s), frm, to)
    out = []
    for query in queries(device):
        if query.kind != "panel":
            continue
        ctx = QueryContext(frm, to, variables, max_data_points=query.max_data_points)
        text = expand(query.sql, ctx)
        times = timed(lambda t=text: run_readonly(conn, t), repeat)
        name = f"{query.name} (run span, $__interval {ctx.interval_ms} ms)"
        out.append((name, statistics.median(times), p95(times), longest_series(query, conn, text)))
    return out


def hf_comparison(conn: Conn, repeat: int, now: datetime) -> None:
    trends = dashboards()["trends.json"]
    device = dashboards()["device.json"]
    frm, to = time_range(trends, now)
    variables = resolve_variables(trends, lambda s: columns_and_rows(conn, s), frm, to)
    label = variables["case"].values[0]
    # Ours over all five years of commits, for the same case.
    everything = QueryContext(datetime(2000, 1, 1, tzinfo=timezone.utc), to, variables)
    trend_query = next(q for q in queries(trends) if q.ref == "A" and q.kind == "panel")
    ours_sql = expand(
        trend_query.sql, next(contexts(trend_query, variables, everything.time_from, to))
    )
    ours = timed(lambda: run_readonly(conn, ours_sql), repeat)
    ours_rows = len(run_readonly(conn, ours_sql))
    hf_params = {
        "gpu": "NVIDIA H100 80GB HBM3",
        "case": label,
        "metric": variables["metric"].values[0],
        "limit": 100000,
    }
    hf = timed(lambda: run_readonly(conn, HF_TREND_SQL, hf_params), repeat)
    hf_rows = len(run_readonly(conn, HF_TREND_SQL, hf_params))
    print(f"\ntrend of {label} over all commits ({ours_rows} points; hf: {hf_rows} rows)")
    print(f"  commitbench   median {statistics.median(ours):8.1f} ms   p95 {p95(ours):8.1f} ms")
    print(f"  hf shape      median {statistics.median(hf):8.1f} ms   p95 {p95(hf):8.1f} ms")
    print(f"  ratio hf/ours {statistics.median(hf) / statistics.median(ours):8.1f}x")

    dfrm, dto = time_range(device, now)
    dvars = resolve_variables(device, lambda s: columns_and_rows(conn, s), dfrm, dto)
    gpu_query = next(q for q in queries(device) if q.title == "GPU utilization")
    dctx = QueryContext(dfrm, dto, dvars, max_data_points=gpu_query.max_data_points)
    dsql = expand(gpu_query.sql, dctx)
    ours_d = timed(lambda: run_readonly(conn, dsql), repeat)
    ours_d_rows = len(run_readonly(conn, dsql))
    # 20 million rows do not fit a Python list comfortably: stream them as COPY and
    # count bytes, which is what the server and the wire cost (Grafana adds its own).
    hf_rows_total = 0

    def hf_device() -> None:
        nonlocal hf_rows_total
        size = 0
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            # The role's 30 s statement timeout protects Grafana; this baseline may take longer.
            cur.execute("SET LOCAL statement_timeout = 0")
            copy_sql = sql.SQL("COPY ({}) TO STDOUT").format(sql.SQL(HF_DEVICE_SQL))
            with cur.copy(copy_sql) as copy:
                for block in copy:
                    size += bytes(block).count(b"\n")
        hf_rows_total = size

    hf_d = timed(hf_device, max(2, repeat // 10))
    print(
        f"\ndevice panel (GPU utilization of one run: {ours_d_rows} rows; hf: every sample "
        f"of the branch, {hf_rows_total} rows)"
    )
    print(f"  commitbench   median {statistics.median(ours_d):8.1f} ms   p95 {p95(ours_d):8.1f} ms")
    print(f"  hf shape      median {statistics.median(hf_d):8.1f} ms   (COPY, {len(hf_d)} runs)")
    print(f"  ratio hf/ours {statistics.median(hf_d) / statistics.median(ours_d):8.0f}x")


def expanded(conn: Conn, now: datetime, boards: dict[str, Json]) -> dict[str, str]:
    """Query name -> the SQL Grafana sends with the defaults (first copy of a repeat)."""
    out = {}
    for dashboard in boards.values():
        frm, to = time_range(dashboard, now)
        variables = resolve_variables(dashboard, lambda s: columns_and_rows(conn, s), frm, to)
        for query in queries(dashboard):
            ctx = next(contexts(query, variables, frm, to))
            out[query.name] = expand(query.sql, ctx)
    return out


def before(conn: Conn, repeat: int, now: datetime, rev: str) -> None:
    """Each query of the dashboards at `rev` and its current version, timed in turns
    (old, new, old, new, ...) so that a change of load on the machine touches both."""
    old = expanded(conn, now, committed_dashboards(rev))
    new = expanded(conn, now, dashboards())
    both = sorted(old.keys() & new.keys())
    times: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in both}
    for name in both:
        run_readonly(conn, old[name])  # warm-up
        run_readonly(conn, new[name])
    for _ in range(repeat):
        for name in both:
            for text, into in ((old[name], times[name][0]), (new[name], times[name][1])):
                start = time.perf_counter()
                run_readonly(conn, text)
                into.append((time.perf_counter() - start) * 1000)
    width = max(len(n) for n in both)
    head = f"{rev[:10]} p95"
    print(f"\nin turns:\n{'query':<{width}}  {head:>14}  {'now p95':>8}  {'now/before':>10}")
    ratios = []
    for name in both:
        was, now_ = p95(times[name][0]), p95(times[name][1])
        ratios.append(now_ / was)
        print(f"{name:<{width}}  {was:14.1f}  {now_:8.1f}  {now_ / was:10.2f}")
    only = sorted(new.keys() - old.keys()) + sorted(old.keys() - new.keys())
    print(
        f"\n{len(both)} queries in both; slowest p95 before "
        f"{max(p95(times[n][0]) for n in both):.1f} ms, now "
        f"{max(p95(times[n][1]) for n in both):.1f} ms; median ratio now/before "
        f"{statistics.median(ratios):.2f}" + (f"; only in one: {', '.join(only)}" if only else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of full size")
    parser.add_argument("--repeat", type=int, default=20, help="timed executions per query")
    parser.add_argument("--database", help="time this existing, loaded database instead")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--baseline", metavar="REV", help="also time the dashboards of REV")
    args = parser.parse_args()

    name = args.database or f"cb_perf_{uuid.uuid4().hex[:10]}"
    role, password = f"cb_perf_reader_{uuid.uuid4().hex[:10]}", secrets.token_urlsafe(16)
    url = make_url(ADMIN_URL).set(database=name)
    created = args.database is None
    if created:
        admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        if created:
            load(url, args.scale)
        engine = dbengine.make_engine(url)
        roles.create_readonly_role(engine, role, password)
        engine.dispose()
        with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
            for statement in (
                "GRANT USAGE ON SCHEMA hf TO {}",
                "GRANT SELECT ON ALL TABLES IN SCHEMA hf TO {}",
            ):
                conn.execute(sql.SQL(statement).format(sql.Identifier(role)))
        now = datetime.now(timezone.utc)
        reader = url.set(username=role, password=password)
        with psycopg.connect(psycopg_url(reader), options="-c TimeZone=UTC") as conn:
            results = measure(conn, args.repeat, now) + device_over_run(conn, args.repeat)
            width = max(len(r[0]) for r in results)
            print(f"\n{'query':<{width}}  {'median':>8}  {'p95':>8}  {'points':>7}")
            for label, median, high, points in results:
                flag = " !" if high > TARGET_P95_MS or points > TARGET_POINTS else ""
                print(f"{label:<{width}}  {median:8.1f}  {high:8.1f}  {points:7d}{flag}")
            print("\nslowest five (p95):")
            for label, _median, high, _points in sorted(results, key=lambda r: -r[2])[:5]:
                print(f"  {high:8.1f} ms  {label}")
            over = [r for r in results if r[2] > TARGET_P95_MS]
            long = [r for r in results if r[3] > TARGET_POINTS]
            print(
                f"\n{len(results)} queries; p95 over {TARGET_P95_MS:.0f} ms: {len(over)}; "
                f"series over {TARGET_POINTS} points: {len(long)}"
            )
            if args.baseline:
                before(conn, args.repeat, now, args.baseline)
            hf_comparison(conn, args.repeat, now)
        return 1 if over or long else 0
    finally:
        # The role's privileges live in this database: revoke them before dropping it.
        with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        if not args.keep and created:
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        else:
            print(f"\nkept database {name}")
        admin(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


if __name__ == "__main__":
    sys.exit(main())
