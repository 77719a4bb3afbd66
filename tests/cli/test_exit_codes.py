"""Exit 3 for infrastructure: a database that was asked for and is not there, git that
fails for a reason other than the user's revision. One line on stderr, no traceback.

The database is taken away for real (ALLOW_CONNECTIONS false and its sessions
terminated: tests/conftest.py's `outage`), the repository is corrupted on disk, git is
taken off PATH, and a worktree shadows commitbench itself so no worker can start in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from commitbench.cli.progress import Quiet
from commitbench.runner.options import CommitOutcome, RunOptions
from commitbench.runner.runner import Runner
from commitbench.runner.vcs import RevSpec
from commitbench.store.csv import find_runs, read_run
from commitbench.store.sql import SqlStore
from tests.cli.conftest import Outcome
from tests.conftest import DatabaseOutage
from tests.gitrepo import bench_repo


def one_line(outcome: Outcome, code: int, message: str) -> None:
    assert (outcome.code, outcome.out) == (code, ""), outcome
    assert outcome.err == f"commitbench: error: {message}\n"


def closed(db_url: URL) -> str:
    where = db_url.set(drivername="postgresql+psycopg").render_as_string(hide_password=True)
    return (
        f"database {where} is unavailable: "
        f'database "{db_url.database}" is not currently accepting connections'
    )


@pytest.mark.parametrize(
    "args",
    [
        ("compare", "HEAD~1", "HEAD"),
        ("detect",),
        ("report",),
        ("regressions",),
        ("db", "current"),
        ("db", "upgrade"),
        ("export",),
        ("import", "."),
        ("jobs",),
        ("enqueue", "HEAD"),
    ],
    ids=lambda args: " ".join(args),
)
def test_a_database_that_is_not_there_is_exit_3(  # type: ignore[no-untyped-def]
    cli,
    db_env: str,
    db_url: URL,
    outage: DatabaseOutage,
    git_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
) -> None:
    monkeypatch.chdir(git_repo)
    (git_repo / "manifest.json").write_text("{}")  # `import .` never gets to read it
    outage.begin()
    outcome = cli(*args, "--results", str(tmp_path / "r"))
    one_line(outcome, 3, closed(db_url))


def test_an_unreachable_database_is_exit_3(cli, git_repo: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(git_repo)
    outcome = cli("compare", "HEAD~1", "HEAD", "--db", "postgresql://u@127.0.0.1:9/x")
    one_line(outcome, 3, "database postgresql+psycopg://u@127.0.0.1:9/x is unreachable")


def test_run_records_to_csv_when_the_database_is_not_there(  # type: ignore[no-untyped-def]
    cli, db_env: str, db_url: URL, outage: DatabaseOutage, git_repo: Path, tmp_path: Path
) -> None:
    outage.begin()
    results = tmp_path / "r"
    outcome = cli("run", "--repo", str(git_repo), "--benches", "benches", "--results", str(results))
    assert outcome.code == 0, outcome.err
    assert outcome.err.startswith(
        f"commitbench: warning: {closed(db_url)}; recording to CSV under {results} instead"
    )
    assert len([p for p in results.iterdir() if p.is_dir()]) == 1


def corrupt(objects: Path, which: list[str]) -> None:
    for sha in which:
        path = objects / sha[:2] / sha[2:]
        path.chmod(0o644)
        path.write_bytes(b"garbage")


def test_a_corrupt_repository_is_exit_3(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, shas = bench_repo(tmp_path / "repo", commits=2)
    corrupt(g.path / ".git" / "objects", [shas[-1]])
    outcome = cli("run", "--repo", str(g.path), "--results", str(tmp_path / "r"))
    assert outcome.code == 3, outcome
    assert outcome.err.startswith(
        f"commitbench: error: git rev-parse --verify failed in {g.path}: "
    )
    assert outcome.err.endswith(
        f"(stored in .git/objects/{shas[-1][:2]}/{shas[-1][2:]}) is corrupt\n"
    )
    assert outcome.err.count("\n") == 1
    # A revision that is not there is still the user's: exit 2.
    one_line(
        cli("run", "--repo", str(g.path), "nosuch"),
        2,
        f"revision 'nosuch' does not resolve to a commit in {g.path}",
    )


def test_a_worktree_that_cannot_be_checked_out_is_exit_3(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, _ = bench_repo(tmp_path / "repo", commits=1)
    blob = g.git("rev-parse", "HEAD:model.py")
    corrupt(g.path / ".git" / "objects", [blob])
    outcome = cli(
        "run", "--repo", str(g.path), "--benches", "benches", "--results", str(tmp_path / "r")
    )
    assert outcome.code == 3, outcome
    last = outcome.err.splitlines()[-1]
    assert last.startswith(f"commitbench: error: git worktree add failed in {g.path}: fatal: ")
    assert last.endswith(f"{blob[2:]}) is corrupt")
    assert g.git("worktree", "list", "--porcelain").count("worktree ") == 1


def test_no_git_binary_is_exit_3(tmp_path: Path, git_repo: Path) -> None:
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    env = {**os.environ, "PATH": str(bare_path)}
    env.pop("GIT_PYTHON_GIT_EXECUTABLE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "commitbench", "run", "--repo", str(git_repo)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert (proc.returncode, proc.stdout) == (3, "")
    assert proc.stderr == (
        "commitbench: error: git is not installed or not on PATH (commitbench runs the git "
        "command)\n"
    )


def test_no_git_binary_after_gitpython_loaded_is_exit_3(  # type: ignore[no-untyped-def]
    cli, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import git  # loaded with git on PATH, as in a long-lived process

    assert git.Git.GIT_PYTHON_GIT_EXECUTABLE == "git"
    monkeypatch.setenv("PATH", str(tmp_path))
    one_line(
        cli("run", "--repo", str(git_repo), "--results", str(tmp_path / "r")),
        3,
        "git is not installed or not on PATH (commitbench runs the git command)",
    )


def test_a_commit_where_no_worker_can_start_records_why(  # type: ignore[no-untyped-def]
    cli, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interpreter that cannot start (here: PYTHONHOME names no Python, inherited by
    the workers) fails the commit with the interpreter's own words, not a traceback."""
    monkeypatch.setenv("PYTHONHOME", str(tmp_path / "no-python-here"))
    outcome = cli(
        "run", "--json", "--repo", str(git_repo), "--benches", "benches",
        "--results", str(tmp_path / "r"),
    )  # fmt: skip
    assert outcome.code == 1, outcome.err
    assert "Traceback" not in outcome.err
    ((failure,),) = [c["results"] for c in json.loads(outcome.out)["commits"]]
    assert (failure["case"], failure["status"]) == ("commitbench.worker", "failed")
    assert failure["error"].startswith(
        "no bench worker can run in this commit's worktree: worker ended with code 1 before "
        "answering\n--- worker output (tail) ---\n"
    )
    assert "Fatal Python error" in failure["error"]


def test_run_spools_the_rest_when_the_database_goes_between_commits(  # type: ignore[no-untyped-def]
    engine, db_url: URL, outage: DatabaseOutage, tmp_path: Path
) -> None:
    """Within a commit MetricsRecorder spools; between commits the runner does."""
    g, shas = bench_repo(tmp_path / "repo", commits=2)
    spool = tmp_path / "spool"

    class GoneAfterFirst(Quiet):
        def commit_finished(self, outcome: CommitOutcome) -> None:
            if outcome.commit.sha == shas[0]:
                outage.begin()

    options = RunOptions(repo=g.path, revs=RevSpec(("main~1", "main")), benches="benches")
    runner = Runner(options, SqlStore(engine), spool=spool, events=GoneAfterFirst())
    first, second = runner.run(runner.plan())
    outage.end()
    assert (first.spooled_to, len(first.results)) == (None, 3)
    assert second.run_id is not None and len(second.results) == 3
    assert second.spooled_to == spool / str(second.run_id)
    (data,) = [read_run(folder) for folder in find_runs(spool)]
    assert (data.header.commit.sha, len(data.results)) == (shas[1], 3)
    assert data.end is not None and data.end.status == "ok"
    assert SqlStore(engine).counts()["runs"] == 1
