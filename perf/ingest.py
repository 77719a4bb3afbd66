"""Ingest benchmark: MetricsRecorder against the one-INSERT-per-row pattern.

A realistic run (default: 300 cases x 4 metrics x 50 raw samples, 200,000 device
samples) is written three ways into the same PostgreSQL, in one invocation, each into an
emptied copy of the real schema:

- ours: MetricsRecorder -> SqlStore, one transaction per bench module (10 cases), device
  samples and metrics through binary COPY;
- per-row: the pattern of the Hugging Face transformers benchmark recorder
  (benchmark/benchmarks_entrypoint.py): an autocommit connection and one INSERT
  statement per row, for every result, metric and device sample;
- bare COPY of the device samples alone, as the ceiling.

Prints each time, device samples per second and the ratios. Targets (issue 2): ours
>= 50x faster than per-row, and >= 150,000 device samples/s end to end.

    .venv/bin/python perf/ingest.py                 # full size (~1-2 minutes)
    .venv/bin/python perf/ingest.py --scale 0.1     # quick check
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import (
    CommitInfo,
    DeviceSample,
    MachineInfo,
    ResultRecord,
    RunHeader,
    RunInfo,
    utcnow,
)
from commitbench.runner.recorder import MetricsRecorder
from commitbench.store import engine as dbengine
from commitbench.store import migrate, sqlcopy
from commitbench.store.sql import SqlStore

TABLES = ("device_samples", "metrics", "results", "runs", "cases", "commits", "machines")
MODULE_SIZE = 10  # cases per bench module = per recorder unit


def make_run(
    cases: int, metrics: int, raw: int, samples: int
) -> tuple[RunHeader, list[ResultRecord]]:
    t0 = utcnow()
    header = RunHeader(
        run=RunInfo(
            id=uuid.uuid4(),
            started_at=t0,
            trigger="cron",
            profile="full",
            branch="main",
            environment={"python": "3.11", "torch": "2.13.0"},
        ),
        commit=CommitInfo(
            repository="https://example.com/acme/model.git",
            sha="c" * 40,
            parents=("d" * 40,),
            subject="perf",
        ),
        machine=MachineInfo.from_facts(gpu_name="NVIDIA H100 80GB HBM3", gpu_count=8),
    )
    per_case = samples // cases
    results = []
    for c in range(cases):
        start = t0 + timedelta(seconds=c)
        results.append(
            ResultRecord(
                case=CaseKey.of(f"bench_{c // MODULE_SIZE}.case", {"i": c}),
                status="ok",
                duration_s=1.0 + c / 1000,
                started_at=start,
                metrics=tuple(
                    MetricRecord.from_samples(
                        f"metric_{m}",
                        [0.001 * (c + 1) + 1e-7 * k * (m + 1) for k in range(raw)],
                        unit="s",
                        properties={"warmup": 3},
                    )
                    for m in range(metrics)
                ),
                device_samples=tuple(
                    DeviceSample(
                        time=start + timedelta(milliseconds=10 * k),
                        gpu_index=k % 8,
                        gpu_util_pct=float(k % 100),
                        gpu_mem_mib=40_000.0 + k,
                        power_w=650.5,
                        sm_clock_mhz=1980.0,
                        temperature_c=61.0,
                        throttle_reasons=0,
                        cpu_util_pct=99.5,
                        rss_mib=3000.25,
                    )
                    for k in range(per_case)
                ),
            )
        )
    return header, results


def empty(engine: Engine) -> None:
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        raw.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(  # type: ignore[union-attr]
                sql.SQL(", ").join(map(sql.Identifier, TABLES))
            )
        )


def ours(engine: Engine, header: RunHeader, results: list[ResultRecord]) -> None:
    with MetricsRecorder(SqlStore(engine), header) as rec:
        for i, r in enumerate(results, start=1):
            rec.add(r)
            if i % MODULE_SIZE == 0:
                rec.flush()


def per_row(engine: Engine, header: RunHeader, results: list[ResultRecord]) -> None:
    """One autocommit INSERT per row through the driver (run header via our store)."""
    SqlStore(engine).open_run(header)
    url = engine.url
    with (
        psycopg.connect(
            host=url.host, port=url.port, dbname=url.database, user=url.username, autocommit=True
        ) as conn,
        conn.cursor() as cur,
    ):
        for r in results:
            cur.execute(
                "INSERT INTO cases (name, params, label) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (r.case.name, Jsonb(r.case.params_dict), r.case.label),
            )
            cur.execute(
                "INSERT INTO results (run_id, case_id, status, duration_s, started_at) "
                "SELECT %s, id, %s, %s, %s FROM cases WHERE label = %s RETURNING id",
                (header.run.id, r.status, r.duration_s, r.started_at, r.case.label),
            )
            row = cur.fetchone()
            assert row is not None
            result_id = row[0]
            for m in r.metrics:
                cur.execute(
                    "INSERT INTO metrics (result_id, name, unit, direction, n, mean, median,"
                    " stddev, min, max, ci_low, ci_high, samples, properties)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        result_id,
                        m.name,
                        m.unit,
                        m.direction,
                        m.n,
                        m.mean,
                        m.median,
                        m.stddev,
                        m.min,
                        m.max,
                        m.ci_low,
                        m.ci_high,
                        list(m.samples or ()),
                        Jsonb(dict(m.properties)),
                    ),
                )
            for s in r.device_samples:
                cur.execute(
                    "INSERT INTO device_samples (run_id, result_id, time, gpu_index,"
                    " gpu_util_pct, gpu_mem_mib, power_w, sm_clock_mhz, temperature_c,"
                    " throttle_reasons, cpu_util_pct, rss_mib)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (header.run.id, result_id, *s),
                )


def bare_copy(engine: Engine, header: RunHeader, results: list[ResultRecord]) -> None:
    """COPY of the device samples alone (result_id NULL), through the store's own COPY
    path: the ceiling for ours."""
    SqlStore(engine).open_run(header)
    with engine.begin() as conn:
        sqlcopy.copy_samples(
            conn.connection.driver_connection,  # type: ignore[arg-type]
            ((header.run.id, None, s) for r in results for s in r.device_samples),
        )


def timed(engine: Engine, fn: Callable[..., None], *args: object) -> float:
    empty(engine)
    begin = time.perf_counter()
    fn(engine, *args)
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours and of bare COPY")
    args = parser.parse_args()

    cases = max(MODULE_SIZE, int(300 * args.scale))
    n_samples = int(200_000 * args.scale)
    header, results = make_run(cases, 4, 50, n_samples)
    total_samples = sum(len(r.device_samples) for r in results)
    rows = total_samples + cases + 4 * cases
    print(f"run: {cases} cases x 4 metrics x 50 raw samples, {total_samples} device samples")

    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    name = f"cb_perf_ingest_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = dbengine.make_engine(make_url(args.admin_url).set(database=name))
    try:
        migrate.upgrade(engine)
        ours_s = statistics.median(timed(engine, ours, header, results) for _ in range(args.repeat))
        copy_s = statistics.median(
            timed(engine, bare_copy, header, results) for _ in range(args.repeat)
        )
        print(
            f"ours (MetricsRecorder, COPY, 1 tx/module): {ours_s:8.3f} s  "
            f"{total_samples / ours_s:10,.0f} device samples/s  {rows / ours_s:10,.0f} rows/s"
        )
        print(
            f"bare COPY of device samples only:          {copy_s:8.3f} s  "
            f"{total_samples / copy_s:10,.0f} device samples/s"
        )
        row_s = timed(engine, per_row, header, results)
        print(
            f"per-row autocommit INSERT (HF pattern):    {row_s:8.3f} s  "
            f"{total_samples / row_s:10,.0f} device samples/s  {rows / row_s:10,.0f} rows/s"
        )
        print(f"ratio per-row / ours: {row_s / ours_s:6.1f}x  (target >= 50x)")
        print(
            f"ours / bare COPY:     {ours_s / copy_s:6.2f}x  "
            f"(end to end {total_samples / ours_s:,.0f}/s, target >= 150,000/s)"
        )
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
