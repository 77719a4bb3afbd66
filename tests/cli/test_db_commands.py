"""`db upgrade | current | create-readonly-role`, `export` and `import` through the CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from commitbench.store import engine as dbengine
from commitbench.store.csv import find_runs, read_run
from commitbench.store.sql import SqlStore
from tests import factories as f
from tests.cli.conftest import url_text
from tests.gitrepo import CASES

ROLE_PASSWORD = "Grafana-Reads-Only-7"


def test_upgrade_then_current(cli, fresh_url: URL) -> None:  # type: ignore[no-untyped-def]
    db = url_text(fresh_url)
    first = cli("db", "upgrade", "--db", db)
    assert (first.code, first.out, first.err) == (0, "schema upgraded from empty to 0008\n", "")
    second = cli("db", "upgrade", "--db", db, "--json")
    assert second.code == 0
    assert json.loads(second.out) == {"before": "0008", "after": "0008", "changed": False}
    current = cli("db", "current", "--db", db, "--json")
    assert current.code == 0
    assert json.loads(current.out) == {
        "revision": "0008",
        "head": "0008",
        "up_to_date": True,
        "counts": {
            "machines": 0,
            "commits": 0,
            "runs": 0,
            "cases": 0,
            "results": 0,
            "metrics": 0,
            "device_samples": 0,
        },
    }


def _connect_as(url: URL, role: str, password: str | None = None) -> psycopg.Connection:  # type: ignore[type-arg]
    return psycopg.connect(
        host=url.host,
        port=url.port,
        dbname=url.database,
        user=role,
        password=password,
        autocommit=True,
    )


@pytest.fixture
def role(fresh_url: URL) -> Iterator[str]:
    """A unique role name; the role is dropped after the test (roles are cluster-wide)."""
    name = f"cb_reader_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(url_text(fresh_url.set(drivername="postgresql")), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_readonly_role_can_only_select(  # type: ignore[no-untyped-def]
    cli, fresh_url: URL, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = url_text(fresh_url)
    assert cli("db", "upgrade", "--db", db).code == 0
    eng = dbengine.make_engine(fresh_url)
    try:
        SqlStore(eng).open_run(f.header())
    finally:
        eng.dispose()
    monkeypatch.setenv("COMMITBENCH_READONLY_PASSWORD", ROLE_PASSWORD)
    made = cli("db", "create-readonly-role", role, "--db", db)
    assert (made.code, made.out) == (
        0,
        f"role {role} created and verified: SELECT on every table now and later, nothing "
        "else (no writes, no temp tables, no CREATE)\n",
    )
    assert made.err.startswith(f"commitbench: warning: role {role} can also connect to ")
    assert ROLE_PASSWORD not in made.text
    again = cli("db", "create-readonly-role", role, "--db", db)
    assert (again.code, again.err) == (
        2,
        f"commitbench: error: role {role} already exists; pass --replace to make it "
        "read-only (every other right it holds is revoked)\n",
    )
    replaced = cli("db", "create-readonly-role", role, "--replace", "--db", db, "--json")
    assert replaced.code == 0
    assert json.loads(replaced.out)["created"] is False

    # A table created later by the migrating role is readable too (default privileges).
    with psycopg.connect(
        url_text(fresh_url.set(drivername="postgresql")), autocommit=True
    ) as owner:
        owner.execute("CREATE TABLE later_table (x int)")
        owner.execute("INSERT INTO later_table VALUES (42)")

    with _connect_as(fresh_url, role) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
        assert conn.execute("SELECT x FROM later_table").fetchone() == (42,)
        for statement in (
            "INSERT INTO cases (name, label) VALUES ('a.b', 'a.b')",
            "UPDATE runs SET status = 'ok'",
            "DELETE FROM runs",
            "CREATE TABLE evil (x int)",
            "DROP TABLE runs",
        ):
            with pytest.raises(
                (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)
            ):
                conn.execute(statement)
        # Even with read-only transactions turned off, privileges still say no.
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM runs")


def test_readonly_role_password_is_accepted_by_a_scram_server(  # type: ignore[no-untyped-def]
    cli, password_server: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = url_text(password_server)
    assert cli("db", "upgrade", "--db", db).code == 0
    name = f"cb_reader_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("COMMITBENCH_READONLY_PASSWORD", ROLE_PASSWORD)
    assert cli("db", "create-readonly-role", name, "--db", db).code == 0
    with _connect_as(password_server, name, ROLE_PASSWORD) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    with pytest.raises(psycopg.OperationalError):
        _connect_as(password_server, name, "not-the-password")


def test_bad_role_name(cli, db_env: str, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COMMITBENCH_READONLY_PASSWORD", ROLE_PASSWORD)
    out = cli("db", "create-readonly-role", 'x"; DROP TABLE runs; --')
    assert out.code == 2
    assert out.err.startswith("commitbench: error: role name ")


def test_csv_run_import_export_round_trip(  # type: ignore[no-untyped-def]
    cli,
    db_env: str,
    engine: Engine,
    git_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COMMITBENCH_DB")
    ran = cli(
        "run",
        "--repo",
        str(git_repo),
        "--benches",
        "benches",
        "--results",
        str(tmp_path / "csv"),
        "--json",
    )
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert report["location"] == str(tmp_path / "csv")
    (commit,) = report["commits"]
    assert [r["case"] for r in commit["results"]] == CASES
    monkeypatch.setenv("COMMITBENCH_DB", db_env)

    first = cli("import", str(tmp_path / "csv"), "--json")
    assert json.loads(first.out) == {
        "runs": 1,
        "results_seen": 3,
        "results_added": 3,
        "artifacts_added": 0,
    }
    counts = SqlStore(engine).counts()
    second = cli("import", str(tmp_path / "csv"), "--json")
    assert json.loads(second.out) == {
        "runs": 1,
        "results_seen": 3,
        "results_added": 0,
        "artifacts_added": 0,
    }
    third = cli("import", str(tmp_path / "csv"))  # one run: "1 run", not "1 runs"
    assert third.out == "imported 1 run: 0 new results (3 already present)\n"
    assert SqlStore(engine).counts() == counts
    assert (counts["runs"], counts["cases"], counts["results"]) == (1, 3, 3)

    exported = cli("export", "--out", str(tmp_path / "out"), "--json")
    assert json.loads(exported.out) == {"out": str(tmp_path / "out"), "runs": [commit["run_id"]]}
    said = cli("export", "--out", str(tmp_path / "out2"))
    assert said.out == f"exported 1 run to {tmp_path / 'out2'}\n"
    (original,) = find_runs(tmp_path / "csv")
    (copy,) = find_runs(tmp_path / "out")
    assert read_run(copy).results == read_run(original).results
    assert read_run(copy).header == read_run(original).header
    assert read_run(copy).end == read_run(original).end
    header = read_run(copy).header
    assert header.commit.subject == "version 1"
    assert header.run.branch == "main"
