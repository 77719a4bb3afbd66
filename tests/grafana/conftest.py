"""A database seeded from the built-in suite's real results, and a read-only connection.

The database is created for the session (cb_test_grafana_<random>), migrated with
Alembic and given a SELECT-only role of its own (roles are cluster-wide, so the name is
unique per session and the role is dropped at the end). It is filled by the real
commands, so the dashboards are tested on the case and metric names the code records:

- `commitbench run --profile smoke main` of the built-in suite on a fresh repository
  (one real run on this machine, CPU: about 70 s, once per session);
- a history replayed from that run: 30 more commits, each the real results with every
  sample scaled by a seeded noise of +-1%, the first 10 recorded without a branch (a
  backfill), the rest on main, and a 30% slowdown of one matmul case from commit 16
  on; the newest commit measured twice (a confirmation run without a branch);
- `commitbench run --trace --force` of that matmul case at the real commit (a real
  profile: its operator table, `profile.*` metrics and Chrome trace), whose `profile.*`
  metrics the replay adds to the case at the two commits around the step (PROFILED), so
  the regression has a profile at its baseline commit and at its commit;
- `commitbench detect`, which finds that step and writes the regression;
- `commitbench import` of the GPU results committed under examples/results/ (an H100
  run of the whole suite, an H100 attention run with 60 GiB held, a 2x H200 all-reduce
  run), for the panels that need a GPU;
- three commits on the fleet's queue, one claimed.

PostgreSQL must be reachable: these tests fail without it, never skip.
"""

from __future__ import annotations

import dataclasses
import os
import random
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import URL, make_url

from commitbench.model import state
from commitbench.model.cases import exact_pattern
from commitbench.model.metrics import MetricRecord
from commitbench.model.points import machine_label
from commitbench.model.profile import is_profile
from commitbench.model.records import REMEASURE_ALL, CommitInfo, ResultRecord, RunData, RunHeader
from commitbench.runner.recorder import MetricsRecorder
from commitbench.store import engine as dbengine
from commitbench.store import migrate, roles
from commitbench.store.sql import SqlStore
from commitbench.store.tables import Commit, Run
from tests.gitrepo import GitBuilder

ADMIN_URL = os.environ.get(
    "COMMITBENCH_TEST_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parents[2]
GPU_RESULTS = ROOT / "examples" / "results"
GPU_REPOSITORY = "/tmp/suite-repo"  # where perf/suite_gpu.sh committed the suite
REPLAYED = 30  # commits after the real one
BACKFILL = 10  # of them, the first recorded without a branch
STEP_AT = 16  # the first replayed commit of the slower level
SLOWDOWN = 1.3
PROFILED = (STEP_AT - 1, STEP_AT)  # replayed commits whose stepped case has a profile


@dataclass(frozen=True)
class Seeded:
    url: URL
    readonly_url: URL
    role: str
    now: datetime
    repository: str  # the smoke run's repository (commits.repository)
    stepped_case: str  # the case label whose timings step by SLOWDOWN at STEP_AT
    stepped_metric: str  # its first timing
    profiled: tuple[str, ...]  # the shas where the stepped case has a profile, oldest first
    cpu_label: str  # the label of this machine, which measured the smoke run
    gpu_span: tuple[datetime, datetime]  # from the first GPU run's start to the last's end


def _admin_execute(statement: sql.Composable) -> None:
    with psycopg.connect(
        make_url(ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    ) as conn:
        conn.execute(statement)


def _commandline(url: URL, *args: str, cwd: Path | None = None) -> str:
    """Run a commitbench command as a user does, in its own process."""
    env = {**os.environ, "COMMITBENCH_DB": url.render_as_string(hide_password=False)}
    proc = subprocess.run(
        [sys.executable, "-m", "commitbench", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode not in (0, 1):
        pytest.fail(f"commitbench {' '.join(args)}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    return proc.stdout


def _scaled(
    result: ResultRecord, factor: float, rng: random.Random, shift: timedelta
) -> ResultRecord:
    """The result with +-1% of noise on every raw sample, its timings (unit s) times
    `factor` and its throughputs (TFLOP/s) divided by it, its times moved by `shift`.
    The replayed history ran on a quiet machine: wall over CPU time 1.0 (the real run's,
    taken while the rest of the suite loads this machine, could mark every commit
    contended, and detect would then rightly report no regression)."""
    metrics = []
    for m in result.metrics:
        if not m.samples:
            metrics.append(m)
            continue
        f = {"s": factor, "TFLOP/s": 1 / factor}.get(m.unit, 1.0)
        samples = [x * f * rng.uniform(0.99, 1.01) for x in m.samples]
        if m.name == state.WALL_PER_CPU:
            samples = [1.0 for _ in m.samples]
        metrics.append(
            MetricRecord.from_samples(
                m.name, samples, unit=m.unit, direction=m.direction, properties=m.properties
            )
        )
    return dataclasses.replace(
        result,
        started_at=result.started_at + shift if result.started_at else None,
        metrics=tuple(metrics),
        device_samples=tuple(d._replace(time=d.time + shift) for d in result.device_samples),
    )


def stepped_case(real: RunData) -> ResultRecord:
    """The case whose timings step: the first matmul case with a throughput."""
    return next(
        r
        for r in real.results
        if r.status == "ok"
        and r.case.name.startswith("matmul.")
        and any(m.unit == "TFLOP/s" for m in r.metrics)
    )


def with_profile(result: ResultRecord, traced: ResultRecord) -> ResultRecord:
    """The result with the profile.* metrics of the traced one added (its timings stay)."""
    extra = tuple(m for m in traced.metrics if is_profile(m.name))
    return dataclasses.replace(result, metrics=(*result.metrics, *extra))


def _replay(store: SqlStore, real: RunData, traced: ResultRecord, now: datetime) -> None:
    """REPLAYED commits after the real one, one a day up to now (see the module)."""
    rng = random.Random(6)
    stepped = stepped_case(real).case.label
    parent = real.header.commit.sha
    for i in range(1, REPLAYED + 1):
        committed = now - timedelta(days=REPLAYED - i, hours=3)
        sha = f"{i:040x}"
        commit = CommitInfo(
            repository=real.header.commit.repository,
            sha=sha,
            parents=(parent,),
            author_name="Ada",
            author_email="ada@example.com",
            authored_at=committed - timedelta(minutes=5),
            committed_at=committed,
            subject=f"Change number {i}",
        )
        branch = None if i <= BACKFILL else "main"
        reruns = [branch, None] if i == REPLAYED else [branch]
        for n, run_branch in enumerate(reruns):
            started = committed + timedelta(hours=1 + n)
            header = RunHeader(
                run=dataclasses.replace(
                    real.header.run,
                    id=uuid.uuid4(),
                    started_at=started,
                    branch=run_branch,
                    trigger="cron" if run_branch else "ci",
                    # The confirmation run measures the commit again on purpose.
                    environment={
                        **real.header.run.environment,
                        **({"remeasure": REMEASURE_ALL} if n else {}),
                    },
                ),
                commit=commit,
                machine=real.header.machine,
            )
            shift = started - real.header.run.started_at
            with MetricsRecorder(
                store, header, clock=lambda s=started: s + timedelta(minutes=2)
            ) as rec:
                for r in real.results:
                    factor = SLOWDOWN if r.case.label == stepped and i >= STEP_AT else 1.0
                    if r.case.label == stepped and i in PROFILED and n == 0:
                        r = with_profile(r, traced)
                    rec.add(_scaled(r, factor, rng, shift))
                rec.flush()
        parent = sha


def seed(url: URL, engine: Engine, now: datetime, work: Path) -> Seeded:
    g = GitBuilder(work / "model")
    g.git("commit", "-q", "--allow-empty", "-m", "Initial model", date=now - timedelta(days=40))
    _commandline(url, "run", "--repo", str(g.path), "--profile", "smoke", "main")
    store = SqlStore(engine)
    with engine.connect() as conn:
        (run_id,) = conn.execute(select(Run.id)).scalars().all()
    real = store.load_run(run_id)
    stepped = stepped_case(real)
    _commandline(
        url,
        "run",
        "--repo",
        str(g.path),
        "--profile",
        "smoke",
        "main",
        "--trace",
        "--force",
        "--filter",
        exact_pattern(stepped.case.label),
    )
    with engine.connect() as conn:
        (traced_id,) = conn.execute(select(Run.id).where(Run.id != run_id)).scalars().all()
    (traced,) = store.load_run(traced_id).results
    if not any(is_profile(m.name) for m in traced.metrics):
        pytest.fail(f"run --trace recorded no profile of {stepped.case.label}")
    _replay(store, real, traced, now)
    _commandline(url, "detect", "--json")
    # Folders that hold result directories; a folder with only an archive
    # (h200-layout-check/results.tgz) is evidence for a README, not a seed.
    for folder in sorted(GPU_RESULTS.iterdir()):
        if folder.is_dir() and any(folder.glob("*/manifest.json")):
            _commandline(url, "import", str(folder))
    # The fleet's queue (Overview's job panels): three commits queued, one claimed.
    from commitbench.fleet import queue

    shas = [f"{i:040x}" for i in range(REPLAYED - 2, REPLAYED + 1)]
    queue.enqueue(
        engine, queue.JobSpec(repository=real.header.commit.repository, branch="main"), shas
    )
    assert queue.claim(engine, "runner-a", real.header.machine, lease_s=600) is not None
    with engine.connect() as conn:
        span = conn.execute(
            select(func.min(Run.started_at), func.max(Run.finished_at))
            .join(Commit, Commit.id == Run.commit_id)
            .where(Commit.repository == GPU_REPOSITORY)
        ).one()
    m = real.header.machine
    return Seeded(
        url=url,
        readonly_url=url,
        role="",
        now=now,
        repository=real.header.commit.repository,
        stepped_case=stepped.case.label,
        stepped_metric=next(x.name for x in stepped.metrics if x.unit == "s"),
        profiled=(real.header.commit.sha, *(f"{i:040x}" for i in PROFILED)),
        cpu_label=machine_label(m.gpu_name, m.gpu_count, m.cpu_model),
        gpu_span=(span[0], span[1]),
    )


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
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
        done = seed(url, engine, now, tmp_path_factory.mktemp("grafana"))
        yield dataclasses.replace(
            done, readonly_url=url.set(username=role, password=password), role=role
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
