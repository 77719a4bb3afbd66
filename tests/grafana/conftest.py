"""A seeded database for the dashboard queries, and a read-only connection to it.

The database is created for the session (cb_test_grafana_<random>), migrated with
Alembic, given a SELECT-only role of its own (roles are cluster-wide, so the name is
unique per session and the role is dropped at the end) and filled through the real
MetricsRecorder. PostgreSQL must be reachable: these tests fail without it, never skip.
"""

from __future__ import annotations

import os
import random
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import URL, make_url

from commitbench.model.records import (
    CaseKey,
    CommitInfo,
    DeviceSample,
    MachineInfo,
    MetricRecord,
    ResultRecord,
    RunHeader,
    RunInfo,
)
from commitbench.runner.recorder import MetricsRecorder
from commitbench.store import engine as dbengine
from commitbench.store import migrate, roles
from commitbench.store.sql import SqlStore
from commitbench.store.tables import Case, Commit, Machine, Regression

ADMIN_URL = os.environ.get(
    "COMMITBENCH_TEST_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REPOSITORY = "https://example.com/acme/model.git"
COMMITS = 12
SAMPLE_TICKS = 20  # device samples per GPU per result, 100 ms apart

# Cases of the built-in workloads as the Workloads dashboard expects them, with metric
# names as the harness writes them (ctx.time("matmul", ..., flops=) -> matmul,
# matmul.tflops, matmul.peak_pct; bytes= -> .gbps; the worker's peak_cuda_mem):
# (name, params, [(metric, unit, direction, typical value)], status)
CASES: list[tuple[str, dict[str, str | int], list[tuple[str, str, str, float]], str]] = [
    ("optimizers.adamw", {"impl": "foreach"}, [("step", "s", "lower", 0.012)], "ok"),
    ("optimizers.adamw", {"impl": "fused"}, [("step", "s", "lower", 0.008)], "ok"),
    (
        "matmul.matmul",
        {"impl": "fp16", "shape": "4096x12288"},
        [
            ("matmul", "s", "lower", 0.0011),
            ("matmul.tflops", "TFLOP/s", "higher", 410.0),
            ("matmul.peak_pct", "%", "higher", 41.4),
        ],
        "ok",
    ),
    (
        "transformer.step",
        {"size": "small"},
        [("step", "s", "lower", 0.05), ("peak_cuda_mem", "MiB", "lower", 2048.0)],
        "ok",
    ),
    ("transformer.step", {"size": "medium"}, [("step", "s", "lower", 0.21)], "ok"),
    (
        "attention.attention",
        {"d": 64, "impl": "sdpa", "seq": 1024},
        [("attention", "s", "lower", 0.0004)],
        "ok",
    ),
    (
        "attention.attention",
        {"d": 64, "impl": "sdpa", "seq": 4096},
        [("attention", "s", "lower", 0.0051)],
        "ok",
    ),
    ("attention.attention", {"d": 64, "impl": "eager", "seq": 4096}, [], "oom"),
    (
        "generation.decode",
        {"model": "tiny", "tokens": 128},
        [("decode", "s", "lower", 0.9), ("tokens_per_s", "tokens/s", "higher", 142.0)],
        "ok",
    ),
    (
        "allreduce.allreduce",
        {"bytes": 67108864, "gpus": 8},
        [("allreduce", "s", "lower", 0.0009), ("allreduce.gbps", "GB/s", "higher", 130.0)],
        "ok",
    ),
]
REGRESSED = ("matmul.matmul", {"impl": "fp16", "shape": "4096x12288"})
REGRESSED_METRIC = "matmul"


@dataclass(frozen=True)
class Seeded:
    url: URL
    readonly_url: URL
    role: str
    now: datetime
    run_ids: tuple[uuid.UUID, ...]


def _admin_execute(statement: sql.Composable) -> None:
    with psycopg.connect(
        make_url(ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    ) as conn:
        conn.execute(statement)


def _machines() -> list[MachineInfo]:
    gpu = MachineInfo.from_facts(
        gpu_name="NVIDIA H100 80GB HBM3",
        gpu_count=2,
        gpu_memory_mib=81559,
        driver_version="550.54.15",
        cuda_version="12.4",
        cpu_model="AMD EPYC 9454",
        cpu_count=96,
        ram_mib=1048576,
    )
    cpu = MachineInfo.from_facts(cpu_model="Intel Xeon", cpu_count=4, ram_mib=16384)
    return [gpu, cpu]


def _results(
    rng: random.Random, started: datetime, commit_index: int, gpus: int
) -> list[ResultRecord]:
    out = []
    at = started
    for name, params, metrics, status in CASES:
        slowdown = 1.2 if (name, params) == REGRESSED and commit_index == COMMITS - 1 else 1.0
        records = []
        for metric, unit, direction, typical in metrics:
            factor = slowdown if direction == "lower" else 1 / slowdown
            samples = [typical * factor * rng.uniform(0.97, 1.03) for _ in range(7)]
            records.append(
                MetricRecord.from_samples(metric, samples, unit=unit, direction=direction)
            )
        ticks = tuple(
            DeviceSample(
                time=at + timedelta(milliseconds=100 * i),
                gpu_index=g if gpus else None,
                gpu_util_pct=float(rng.randint(60, 100)) if gpus else None,
                gpu_mem_mib=20000.0 + 10 * i if gpus else None,
                power_w=float(rng.randint(300, 700)) if gpus else None,
                sm_clock_mhz=1980.0 if gpus else None,
                temperature_c=55.0 + 0.1 * i if gpus else None,
                throttle_reasons=0 if gpus else None,
                cpu_util_pct=float(rng.randint(5, 100)),
                rss_mib=3000.0 + i,
            )
            for i in range(SAMPLE_TICKS)
            for g in range(max(gpus, 1))
        )
        out.append(
            ResultRecord(
                case=CaseKey.of(name, params),
                status=status,
                error="CUDA out of memory" if status == "oom" else None,
                duration_s=SAMPLE_TICKS * 0.1,
                started_at=at,
                metrics=tuple(records),
                device_samples=ticks,
            )
        )
        at += timedelta(seconds=SAMPLE_TICKS * 0.1 + 0.5)
    return out


def seed(engine: Engine, now: datetime) -> tuple[uuid.UUID, ...]:
    """Twelve nightly commits on main, each run on a GPU machine (full) and every
    third also on a CPU machine (smoke); one open regression on the last commit."""
    rng = random.Random(6)
    store = SqlStore(engine)
    gpu, cpu = _machines()
    shas = [f"{i:02x}" * 20 for i in range(1, COMMITS + 1)]
    run_ids = []
    for i, sha in enumerate(shas):
        committed = now - timedelta(days=COMMITS - 1 - i, hours=3)
        commit = CommitInfo(
            repository=REPOSITORY,
            sha=sha,
            parents=(shas[i - 1],) if i else (),
            author_name="Ada",
            author_email="ada@example.com",
            authored_at=committed - timedelta(minutes=5),
            committed_at=committed,
            subject=f"Change number {i}",
        )
        plan = [(gpu, "full", 2)] + ([(cpu, "smoke", 0)] if i % 3 == 0 else [])
        for machine, profile, gpus in plan:
            started = committed + timedelta(hours=1)
            header = RunHeader(
                run=RunInfo(
                    id=uuid.uuid4(),
                    started_at=started,
                    trigger="cron",
                    profile=profile,
                    branch="main",
                    environment={"python": "3.11", "torch": "2.13.0"},
                ),
                commit=commit,
                machine=machine,
            )
            with MetricsRecorder(
                store, header, clock=lambda s=started: s + timedelta(minutes=1)
            ) as rec:
                for result in _results(rng, started + timedelta(seconds=1), i, gpus):
                    rec.add(result)
                rec.flush()
            run_ids.append(header.run.id)
    with engine.begin() as conn:
        case_id = conn.execute(
            select(Case.id).where(Case.label == CaseKey.of(*REGRESSED).label)
        ).scalar_one()
        machine_id = conn.execute(
            select(Machine.id).where(Machine.fingerprint == gpu.fingerprint)
        ).scalar_one()
        commit_ids = dict(conn.execute(select(Commit.sha, Commit.id)).all())
        conn.execute(
            insert(Regression).values(
                case_id=case_id,
                metric=REGRESSED_METRIC,
                machine_id=machine_id,
                branch="main",
                profile="full",
                commit_id=commit_ids[shas[-1]],
                baseline_commit_id=commit_ids[shas[-2]],
                baseline=0.0011,
                value=0.00132,
                change_pct=20.0,
                p_value=0.001,
                method="e-divisive",
                detected_at=now - timedelta(minutes=10),
                state="open",
            )
        )
    # The fleet's queue (Overview's job panels): three commits queued, one claimed.
    from commitbench.fleet import queue

    queue.enqueue(engine, queue.JobSpec(repository=REPOSITORY, branch="main"), shas[-3:])
    assert queue.claim(engine, "runner-a", gpu, lease_s=600) is not None
    return tuple(run_ids)


@pytest.fixture(scope="session")
def seeded() -> Iterator[Seeded]:
    token = uuid.uuid4().hex[:10]
    database, role = f"cb_test_grafana_{token}", f"cb_test_reader_{token}"
    password = secrets.token_urlsafe(16)
    try:
        _admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL}: {type(exc).__name__}")
    url = make_url(ADMIN_URL).set(database=database)
    engine = dbengine.make_engine(url)
    try:
        migrate.upgrade(engine)
        roles.create_readonly_role(engine, role, password)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        run_ids = seed(engine, now)
        yield Seeded(
            url=url,
            readonly_url=url.set(username=role, password=password),
            role=role,
            now=now,
            run_ids=run_ids,
        )
    finally:
        engine.dispose()
        _admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        # The database (and the privileges granted in it) is gone; the role owns nothing.
        _admin_execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def connect(url: URL, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        url.set(drivername="postgresql").render_as_string(hide_password=False),
        options="-c TimeZone=UTC",
        autocommit=autocommit,
    )


@pytest.fixture
def reader(seeded: Seeded) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection as the read-only role, as Grafana's data source has."""
    with connect(seeded.readonly_url) as conn:
        yield conn
