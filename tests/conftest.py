"""Shared fixtures: a throwaway PostgreSQL database, migrated once, emptied per test.

The tests need the real PostgreSQL (127.0.0.1:5432, user postgres, trust auth, or
COMMITBENCH_TEST_ADMIN_URL). If it is down the run fails; it never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from psycopg import sql
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from commitbench.cli import main
from commitbench.store import engine as dbengine
from commitbench.store import migrate

# Property tests (hypothesis) draw the same examples on every run and every machine: a
# failure is reproduced by running the test again, and CI time stays fixed. No example
# database is kept (the examples are derived from each test's source instead). A test
# that needs more or fewer examples says so with its own @settings.
settings.register_profile(
    "commitbench",
    derandomize=True,
    database=None,
    max_examples=100,
    deadline=None,  # a loaded machine must not fail a property by being slow
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("commitbench")

ADMIN_URL = os.environ.get(
    "COMMITBENCH_TEST_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TABLES = (
    "profile_artifacts",
    "jobs",
    "device_samples",
    "metrics",
    "results",
    "regressions",
    "runs",
    "cases",
    "commits",
    "machines",
)


@pytest.fixture(scope="session")
def admin() -> Iterator[Engine]:
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.exit(
            f"PostgreSQL is not reachable at {ADMIN_URL} ({type(exc).__name__}); start it: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            returncode=3,
        )
    yield engine
    engine.dispose()


def _create_database(admin: Engine, prefix: str) -> URL:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        raw = conn.connection.driver_connection
        raw.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))  # type: ignore[union-attr]
    return make_url(ADMIN_URL).set(database=name)


def _drop_database(admin: Engine, url: URL) -> None:
    with admin.connect() as conn:
        raw = conn.connection.driver_connection
        raw.execute(  # type: ignore[union-attr]
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(url.database or "")
            )
        )


@pytest.fixture
def fresh_url(admin: Engine) -> Iterator[URL]:
    """An empty database of its own, dropped after the test."""
    url = _create_database(admin, "cb_test_fresh")
    yield url
    _drop_database(admin, url)


@pytest.fixture(scope="session")
def db_url(admin: Engine) -> Iterator[URL]:
    """The session's database, migrated to head once."""
    url = _create_database(admin, "cb_test")
    engine = dbengine.make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    _drop_database(admin, url)


@pytest.fixture
def engine(db_url: URL) -> Iterator[Engine]:
    """An engine on the session database, every table emptied before the test."""
    eng = dbengine.make_engine(db_url)
    with eng.begin() as conn:
        raw = conn.connection.driver_connection
        raw.execute(  # type: ignore[union-attr]
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(map(sql.Identifier, TABLES))
            )
        )
    yield eng
    eng.dispose()


@pytest.fixture
def db_env(db_url: URL, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> str:
    """COMMITBENCH_DB set to the (emptied) session database, as a plain URL string."""
    raw = db_url.set(drivername="postgresql").render_as_string(hide_password=False)
    monkeypatch.setenv("COMMITBENCH_DB", raw)
    return raw


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: skips must not hide a missing database."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {skipped} tests were skipped; skips are failures here")
        session.exitstatus = 1


@pytest.fixture
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real git repository: two commits of model.py and benches/bench_model.py."""
    from tests.gitrepo import bench_repo

    g, _ = bench_repo(tmp_path_factory.mktemp("repo") / "repo", commits=2)
    return g.path


class DatabaseOutage:
    """Takes a database away for real: no new connections, existing ones terminated."""

    def __init__(self, admin: Engine, url: URL) -> None:
        self.admin = admin
        self.name = url.database or ""

    def _run(self, statement: sql.Composable, params: tuple[object, ...] = ()) -> None:
        with self.admin.connect() as conn:
            conn.connection.driver_connection.execute(statement, params)  # type: ignore[union-attr]

    def terminate_connections(self) -> None:
        self._run(
            sql.SQL(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()"
            ),
            (self.name,),
        )

    def begin(self) -> None:
        self._run(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(self.name))
        )
        self.terminate_connections()

    def end(self) -> None:
        self._run(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(self.name))
        )


@pytest.fixture
def outage(admin: Engine, db_url: URL) -> Iterator[DatabaseOutage]:
    o = DatabaseOutage(admin, db_url)
    yield o
    o.end()


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `commitbench ARGS...` in this process and capture what it prints."""

    def run(*args: str) -> Outcome:
        code = main(list(args))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run
