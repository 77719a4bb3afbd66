"""Bad input: one line on stderr, exit code 2 (3 for an unreachable database), no
traceback, no secret, nothing written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from commitbench.model import cpus
from commitbench.runner.recorder import MetricsRecorder
from commitbench.store.csv import MANIFEST, CsvStore
from commitbench.store.sql import SqlStore
from tests import factories as f
from tests.cli.conftest import Outcome, url_text
from tests.gitrepo import bench_repo

SECRET = "s3cret-Zebra"


def one_error_line(outcome: Outcome, expected: str, code: int = 2) -> None:
    assert outcome.code == code, outcome
    assert outcome.out == ""
    assert outcome.err == f"commitbench: error: {expected}\n"
    assert SECRET not in outcome.text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"postgresql://u:{SECRET}@db.example:notaport/x",
            "malformed database URL (expected postgresql://USER@HOST[:PORT]/DBNAME)",
        ),
        (
            f"mysql://root:{SECRET}@127.0.0.1/x",
            "unsupported database URL scheme 'mysql': commitbench needs PostgreSQL",
        ),
        (
            f"postgresql://u:{SECRET}@127.0.0.1:5432",
            "database URL postgresql://u:***@127.0.0.1:5432 names no database",
        ),
        (
            f"postgresql+asyncpg://u:{SECRET}@127.0.0.1/x",
            "unsupported PostgreSQL driver 'asyncpg': use psycopg",
        ),
    ],
)
def test_malformed_urls(cli, url: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    one_error_line(cli("db", "upgrade", "--db", url), expected)


def test_wrong_password(cli, password_server: URL) -> None:  # type: ignore[no-untyped-def]
    wrong = password_server.set(password=SECRET)
    one_error_line(
        cli("db", "upgrade", "--db", url_text(wrong)),
        f"database postgresql+psycopg://postgres:***@127.0.0.1:{password_server.port}/postgres"
        ' refused the connection: password authentication failed for user "postgres"',
    )


def test_wrong_password_stops_a_run_before_measuring(  # type: ignore[no-untyped-def]
    cli, password_server: URL, git_repo: Path, tmp_path: Path
) -> None:
    wrong = password_server.set(password=SECRET)
    outcome = cli(
        "run", "--repo", str(git_repo), "--results", str(tmp_path / "r"), "--db", url_text(wrong)
    )
    assert outcome.code == 2
    assert "password authentication failed" in outcome.err
    assert SECRET not in outcome.text
    assert not (tmp_path / "r").exists()


def test_right_password_connects(cli, password_server: URL) -> None:  # type: ignore[no-untyped-def]
    outcome = cli("db", "current", "--db", url_text(password_server))
    assert outcome.code == 1  # reachable and accepted, but no schema yet
    assert outcome.out == "revision none (behind head 0008)\n"


@pytest.mark.parametrize("command", [["db", "upgrade"], ["export"], ["import", "."]])
def test_unreachable_host(cli, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    one_error_line(
        cli(*command, "--db", f"postgresql://postgres:{SECRET}@127.0.0.1:1/commitbench"),
        "database postgresql+psycopg://postgres:***@127.0.0.1:1/commitbench is unreachable",
        code=3,  # infrastructure, not the command
    )


def test_missing_database(cli) -> None:  # type: ignore[no-untyped-def]
    one_error_line(
        cli("db", "upgrade", "--db", "postgresql://postgres@127.0.0.1:5432/cb_no_such_db"),
        "database postgresql+psycopg://postgres@127.0.0.1:5432/cb_no_such_db refused the "
        'connection: database "cb_no_such_db" does not exist',
    )


def test_outdated_schema_asks_for_upgrade(cli, fresh_url: URL, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    one_error_line(
        cli("import", str(tmp_path), "--db", url_text(fresh_url)),
        "database schema is empty (no commitbench schema), this commitbench needs 0008: "
        "run `commitbench db upgrade`",
    )


@pytest.mark.parametrize("command", [["export"], ["import", "."], ["db", "current"]])
def test_no_database_configured(cli, command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("COMMITBENCH_DB", raising=False)
    one_error_line(cli(*command), "no database: pass --db URL or set COMMITBENCH_DB")


def _two_runs(root: Path) -> list[Path]:
    folders = []
    for _ in range(2):
        header = f.header()
        with MetricsRecorder(CsvStore(root), header) as rec:
            rec.add(f.result())
        folders.append(root / str(header.run.id))
    return sorted(folders)


DAMAGE = {
    "wrong version": (
        lambda d: (d / MANIFEST).write_text(
            (d / MANIFEST).read_text().replace('"version": 3', '"version": 4')
        ),
        "{m}: format version 4 is not supported (this commitbench reads versions 1, 2, 3)",
    ),
    "truncated": (
        lambda d: (d / "metrics-0001.csv").write_bytes((d / "metrics-0001.csv").read_bytes()[:-9]),
        "{d}/metrics-0001.csv: truncated or modified (checksum differs from the manifest)",
    ),
    "missing file": (
        lambda d: (d / "results-0001.csv").unlink(),
        "{d}/results-0001.csv: missing",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_csv_imports_nothing(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, tmp_path: Path, damage: str
) -> None:
    _good, bad = _two_runs(tmp_path)
    corrupt, message = DAMAGE[damage]
    corrupt(bad)
    before = SqlStore(engine).counts()
    one_error_line(cli("import", str(tmp_path)), message.format(d=bad, m=bad / MANIFEST))
    assert SqlStore(engine).counts() == before  # not even the good run went in
    shutil.rmtree(bad)
    assert cli("import", str(tmp_path)).code == 0
    assert SqlStore(engine).counts()["runs"] == 1


def test_import_of_a_missing_directory(cli, db_env: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    one_error_line(
        cli("import", str(tmp_path / "nope")), f"{tmp_path / 'nope'}: no such results directory"
    )


def test_run_outside_a_git_repository(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    one_error_line(cli("run", "--repo", str(tmp_path)), f"not a git repository: {tmp_path}")


def test_run_with_a_bad_revision(cli, git_repo: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    one_error_line(
        cli("run", "--repo", str(git_repo), "--results", str(tmp_path / "r"), "HEAD", "nope"),
        f"revision 'nope' does not resolve to a commit in {git_repo.resolve()}",
    )
    assert not (tmp_path / "r").exists()


def test_run_with_a_missing_bench_directory(cli, git_repo: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    one_error_line(
        cli(
            "run",
            "--repo",
            str(git_repo),
            "--results",
            str(tmp_path / "r"),
            "--benches",
            "no_such_dir",
            "HEAD~1..HEAD",
        ),
        "bench directory 'no_such_dir' is not in the commit",
    )
    one_error_line(
        cli("run", "--repo", str(git_repo), "--benches", str(tmp_path / "absent")),
        f"bench directory {tmp_path / 'absent'} does not exist",
    )


def test_export_with_a_bad_run_id(cli, db_env: str) -> None:  # type: ignore[no-untyped-def]
    one_error_line(cli("export", "--run", "not-a-uuid"), "--run takes a run UUID")


def test_unknown_option_is_a_usage_error(cli) -> None:  # type: ignore[no-untyped-def]
    one_error_line(cli("run", "--bogus"), "No such option '--bogus'.")


def test_readonly_role_needs_password_from_environment(  # type: ignore[no-untyped-def]
    cli, db_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMMITBENCH_READONLY_PASSWORD", raising=False)
    one_error_line(
        cli("db", "create-readonly-role", "grafana"),
        "set COMMITBENCH_READONLY_PASSWORD to the password of role grafana",
    )


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "commitbench", "export", "--db", f"postgresql://u:{SECRET}@h:x/d"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "commitbench: error: malformed database URL "
        "(expected postgresql://USER@HOST[:PORT]/DBNAME)\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["run", "HEAD"],
        ["check", "HEAD~1", "HEAD"],
        ["compare", "--measure", "HEAD~1", "HEAD"],
        ["bisect", "HEAD~1", "HEAD", "--case", "x.y"],
        ["doctor"],
        ["worker", "--drain"],
    ],
)
def test_a_cpu_this_machine_does_not_have_is_refused_before_anything_runs(  # type: ignore[no-untyped-def]
    cli, command: list[str], tmp_path: Path
) -> None:
    g, _ = bench_repo(tmp_path / "repo", 2)
    where = [] if command[0] in ("doctor", "worker") else ["--repo", str(g.path)]
    out = ["--results", str(tmp_path / "r")]
    one_error_line(
        cli(*command, *where, *out, "--affinity", "4096"),
        f"--affinity 4096: CPU 4096 is not one this process may run on "
        f"({cpus.as_text(os.sched_getaffinity(0))})",
    )
    one_error_line(
        cli(*command, *where, *out, "--affinity", "0-"),
        "--affinity: '0-' in '0-' is not a CPU or a range of CPUs",
    )
    assert not (tmp_path / "r").exists()


def test_affinity_places_the_workers_that_measure(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, _ = bench_repo(tmp_path / "repo", 2)
    one_error_line(
        cli("compare", "HEAD~1", "HEAD", "--repo", str(g.path), "--affinity", "0"),
        "--affinity places the workers that measure: give it with --measure",
    )
