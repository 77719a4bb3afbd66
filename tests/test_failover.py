"""The database going away never loses a measured result."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from commitbench.runner.recorder import MetricsRecorder
from commitbench.store import engine as dbengine
from commitbench.store.csv import read_run
from commitbench.store.sql import SqlStore
from commitbench.store.transfer import import_runs
from tests import factories as f
from tests.conftest import DatabaseOutage
from tests.gitrepo import CASES, SLOW_CASES, bench_repo

RESULTS = [f.result(i=i) for i in range(4)]


def test_lost_database_spools_the_rest_and_import_completes_the_run(
    engine: Engine, db_url: URL, outage: DatabaseOutage, tmp_path: Path
) -> None:
    header = f.header()
    rec = MetricsRecorder(SqlStore(engine), header, spool=tmp_path)
    with rec:
        rec.add(RESULTS[0])
        rec.flush()
        outage.begin()  # the database is gone from here on
        for r in RESULTS[1:]:
            rec.add(r)
            rec.flush()
        rec.add_run_samples(f.samples(3, gpus=1))
    outage.end()

    assert rec.spooled_to == tmp_path / str(header.run.id)
    spooled = read_run(rec.spooled_to)
    assert spooled.results == tuple(RESULTS[1:])
    assert spooled.end is not None and spooled.end.status == "ok"

    fresh = dbengine.make_engine(db_url)
    try:
        store = SqlStore(fresh)
        assert store.counts()["results"] == 1  # only what was written before the loss
        summary = import_runs(store, tmp_path)
        assert (summary.runs, summary.results_seen, summary.results_added) == (1, 3, 3)
        once = store.counts()
        assert once == {
            "machines": 1,
            "commits": 1,
            "runs": 1,
            "cases": 4,
            "results": 4,
            "metrics": 12,
            "device_samples": 4 * 3 * 2 + 3,
        }
        again = import_runs(store, tmp_path)
        assert again.results_added == 0
        assert store.counts() == once
        data = store.load_run(header.run.id)
        assert data.results == tuple(RESULTS)
        assert data.end is not None and data.end.status == "ok"
        assert data.end.device_samples == f.samples(3, gpus=1)
    finally:
        fresh.dispose()


def test_dropped_connection_with_live_database_is_not_spooled(
    engine: Engine, outage: DatabaseOutage, tmp_path: Path
) -> None:
    header = f.header()
    rec = MetricsRecorder(SqlStore(engine), header, spool=tmp_path)
    with rec:
        rec.add(RESULTS[0])
        rec.flush()
        outage.terminate_connections()  # e.g. a proxy dropped it; the server is fine
        rec.add(RESULTS[1])
        rec.flush()
    assert rec.spooled_to is None
    assert list(tmp_path.iterdir()) == []
    assert SqlStore(engine).counts()["results"] == 2


def test_cli_run_losing_the_database_exits_1_and_says_how_to_import(
    db_env: str, engine: Engine, outage: DatabaseOutage, tmp_path: Path
) -> None:
    g, (sha,) = bench_repo(tmp_path / "repo", commits=1, slow=True)
    results_dir = tmp_path / "results"
    gate = tmp_path / "gate"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commitbench",
            "run",
            "--repo",
            str(g.path),
            "--benches",
            "benches",
            "--results",
            str(results_dir),
            "--pass-env",
            "COMMITBENCH_TEST_GATE",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COMMITBENCH_TEST_GATE": str(gate)},
    )
    deadline = time.monotonic() + 120
    with engine.connect() as conn:
        while conn.execute(text("SELECT count(*) FROM results")).scalar_one() < 1:
            assert time.monotonic() < deadline, "the run recorded nothing"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
            conn.rollback()
    outage.begin()  # bench_model's cases are in the database; bench_slow waits at its gate
    gate.touch()
    _out, err = proc.communicate(timeout=120)
    outage.end()

    assert proc.returncode == 1, err
    run_dir = next(results_dir.iterdir())
    assert f"commitbench import {run_dir}" in err
    assert "Traceback" not in err
    spooled = read_run(run_dir)
    assert spooled.header.commit.sha == sha
    assert [r.case.label for r in spooled.results] == SLOW_CASES

    fresh = dbengine.make_engine(dbengine.parse_url(db_env))
    try:
        store = SqlStore(fresh)
        import_runs(store, run_dir)
        data = store.load_run(spooled.header.run.id)
        assert [r.case.label for r in data.results] == CASES + SLOW_CASES
        assert [r.status for r in data.results] == ["ok"] * 5
        assert data.results[3:] == spooled.results  # nothing lost, bit for bit
        counts = store.counts()
        assert (counts["runs"], counts["results"]) == (1, 5)
        assert counts["metrics"] == sum(len(r.metrics) for r in data.results)
        assert data.end is not None and data.end.status == "ok"
    finally:
        fresh.dispose()


def test_cli_run_with_unreachable_database_records_to_csv(git_repo: Path, tmp_path: Path) -> None:
    results_dir = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "commitbench",
            "run",
            "--repo",
            str(git_repo),
            "--benches",
            "benches",
            "--results",
            str(results_dir),
            "--db",
            "postgresql://postgres:hunter2@127.0.0.1:1/commitbench",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "commitbench: warning: database postgresql+psycopg://postgres:***@127.0.0.1:1/"
        f"commitbench is unreachable; recording to CSV under {results_dir} instead"
    ) in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout
    (run_dir,) = results_dir.iterdir()
    assert [r.case.label for r in read_run(run_dir).results] == CASES


def _run_gated(repo: Path, results_dir: Path, gate: Path, *revs: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commitbench",
            "run",
            *revs,
            "--repo",
            str(repo),
            "--benches",
            "benches",
            "--results",
            str(results_dir),
            "--pass-env",
            "COMMITBENCH_TEST_GATE",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COMMITBENCH_TEST_GATE": str(gate)},
    )


def _wait_for_results(engine: Engine, proc: subprocess.Popen[str], count: int) -> None:
    deadline = time.monotonic() + 120
    with engine.connect() as conn:
        while conn.execute(text("SELECT count(*) FROM results")).scalar_one() < count:
            assert time.monotonic() < deadline, "the run recorded nothing"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
            conn.rollback()


def _spooled_runs(results_dir: Path) -> dict[str, list[str]]:
    """sha -> case labels of each spooled run."""
    out: dict[str, list[str]] = {}
    for folder in sorted(results_dir.iterdir()):
        data = read_run(folder)
        out[data.header.commit.sha] = [r.case.label for r in data.results]
    return out


def _import_all_and_count(db_env: str, results_dir: Path) -> list[tuple[str, int]]:
    fresh = dbengine.make_engine(dbengine.parse_url(db_env))
    try:
        import_runs(SqlStore(fresh), results_dir)
        with fresh.connect() as conn:
            return [
                (sha, n)
                for sha, n in conn.execute(
                    text(
                        "SELECT c.sha, count(*) FROM results r JOIN runs u ON u.id = r.run_id "
                        "JOIN commits c ON c.id = u.commit_id GROUP BY c.sha ORDER BY c.sha"
                    )
                )
            ]
    finally:
        fresh.dispose()


def test_database_down_across_commit_boundaries_spools_the_remaining_commits(
    db_env: str, engine: Engine, outage: DatabaseOutage, tmp_path: Path
) -> None:
    """Killed during the first of three commits and not coming back: the unit in flight
    and the two later commits (measured in full: what the database holds is unknown)
    are spooled, one run directory each; exit 1 with an import line per directory, and
    importing them completes everything exactly once."""
    g, shas = bench_repo(tmp_path / "repo", commits=3, slow=True)
    results_dir, gate = tmp_path / "results", tmp_path / "gate"
    proc = _run_gated(g.path, results_dir, gate, *shas)
    _wait_for_results(engine, proc, len(CASES))
    outage.begin()  # the first commit's bench_model is in; bench_slow waits at its gate
    gate.touch()
    _out, err = proc.communicate(timeout=300)
    outage.end()

    assert (proc.returncode, "Traceback" in err) == (1, False), err
    assert _spooled_runs(results_dir) == {
        shas[0]: SLOW_CASES,
        shas[1]: CASES + SLOW_CASES,
        shas[2]: CASES + SLOW_CASES,
    }
    for folder in results_dir.iterdir():
        assert f"load it with: commitbench import {folder}\n" in err
    assert _import_all_and_count(db_env, results_dir) == sorted((sha, 5) for sha in shas)


def test_database_turned_read_only_mid_run_spools_the_unit_in_flight(
    admin: Engine, db_env: str, engine: Engine, tmp_path: Path
) -> None:
    """`ALTER DATABASE ... SET default_transaction_read_only = on` and the sessions
    terminated (what an operator does to freeze a database, and what a standby
    promoted the other way looks like): every INSERT fails with ReadOnlySqlTransaction.
    The unit in flight and the next commit go to the spool, no traceback, exit 1."""
    g, shas = bench_repo(tmp_path / "repo", commits=2, slow=True)
    results_dir, gate = tmp_path / "results", tmp_path / "gate"
    name = engine.url.database
    assert name is not None
    proc = _run_gated(g.path, results_dir, gate, *shas)
    try:
        _wait_for_results(engine, proc, len(CASES))
        engine.dispose()
        with admin.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute(
                sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                    sql.Identifier(name)
                )
            )
            raw.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        gate.touch()
        _out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with admin.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute(
                sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(
                    sql.Identifier(name)
                )
            )

    assert (proc.returncode, "Traceback" in err) == (1, False), err
    assert _spooled_runs(results_dir) == {shas[0]: SLOW_CASES, shas[1]: CASES + SLOW_CASES}
    for folder in results_dir.iterdir():
        assert f"load it with: commitbench import {folder}\n" in err
    assert _import_all_and_count(db_env, results_dir) == sorted((sha, 5) for sha in shas)
