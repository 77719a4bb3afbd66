"""`commitbench run` over real repositories: ranges, skipping, resuming, broken commits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from commitbench.store.csv import find_runs, read_run
from commitbench.store.sql import SqlStore
from tests.gitrepo import BENCH_MODULE, CASES, SLOW_CASES, GitBuilder, bench_repo

VERSIONS_BY_SHA = text(
    "SELECT c.sha, m.median FROM metrics m JOIN results r ON r.id = m.result_id "
    "JOIN runs u ON u.id = r.run_id JOIN commits c ON c.id = u.commit_id "
    "WHERE m.name = 'version'"
)


def run_json(cli, *args: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def,type-arg]
    outcome = cli("run", "--benches", "benches", "--json", *args)
    return outcome.code, json.loads(outcome.out)


@pytest.fixture
def ten(tmp_path: Path) -> tuple[GitBuilder, list[str]]:
    return bench_repo(tmp_path / "repo", commits=10)


def test_ten_commits_into_postgresql(cli, db_env: str, engine: Engine, ten) -> None:  # type: ignore[no-untyped-def]
    g, shas = ten
    code, report = run_json(cli, "--repo", str(g.path), "--max-count", "10", "main")
    assert code == 0
    assert [c["sha"] for c in report["commits"]] == shas  # oldest first
    assert all([r["case"] for r in c["results"]] == CASES for c in report["commits"])
    counts = SqlStore(engine).counts()
    assert (counts["commits"], counts["runs"], counts["results"]) == (10, 10, 30)
    with engine.connect() as conn:
        versions = conn.execute(VERSIONS_BY_SHA).all()
        profiles = conn.execute(text("SELECT DISTINCT profile, trigger FROM runs")).all()
        branches = conn.execute(text("SELECT DISTINCT branch FROM runs")).all()
    # Every commit was measured with its own code: commit i has model.VERSION == i.
    assert sorted(versions, key=lambda row: shas.index(row[0])) == [
        (sha, float(i)) for i, sha in enumerate(shas) for _ in CASES
    ]
    assert profiles == [("smoke", "manual")]  # auto on a machine without a GPU
    assert branches == [("main",)]  # the revision named the branch


def test_ten_commits_into_csv(cli, ten, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, shas = ten
    out = tmp_path / "results"
    code, report = run_json(
        cli, "--repo", str(g.path), "--results", str(out), f"{shas[0]}..{shas[-1]}", shas[0]
    )
    assert code == 0
    assert len(report["commits"]) == 10
    runs = [read_run(folder) for folder in find_runs(out)]
    by_sha = {r.header.commit.sha: r for r in runs}
    assert sorted(by_sha) == sorted(shas)
    for i, sha in enumerate(shas):
        data = by_sha[sha]
        assert [r.case.label for r in data.results] == CASES
        versions = {next(m.median for m in r.metrics if m.name == "version") for r in data.results}
        assert versions == {float(i)}
        assert data.end is not None and data.end.status == "ok"
        assert data.header.run.branch is None  # shas name no branch


def test_users_tree_and_head_are_untouched(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, shas = bench_repo(tmp_path / "repo", commits=3)
    g.checkout(shas[1])  # a detached HEAD, with local changes on top
    (g.path / "model.py").write_text("VERSION = 'dirty'\n")
    (g.path / "new.txt").write_text("staged\n")
    g.git("add", "new.txt")
    before = (g.head(), g.git("status", "--porcelain"), g.git("diff"), g.git("diff", "--cached"))
    code, _ = run_json(cli, "--repo", str(g.path), "--results", str(tmp_path / "r"), "main~2..main")
    assert code == 0
    after = (g.head(), g.git("status", "--porcelain"), g.git("diff"), g.git("diff", "--cached"))
    assert after == before
    assert g.git("worktree", "list", "--porcelain").count("worktree ") == 1


def test_recorded_work_is_skipped_and_force_measures_again(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, tmp_path: Path
) -> None:
    g, _shas = bench_repo(tmp_path / "repo", commits=3)
    args = ("--repo", str(g.path), "--max-count", "3", "main")
    assert run_json(cli, *args)[0] == 0
    counts = SqlStore(engine).counts()

    code, again = run_json(cli, *args)
    assert code == 0
    assert [(c["run_id"], c["already_recorded"], c["results"]) for c in again["commits"]] == [
        (None, 3, [])
    ] * 3
    assert SqlStore(engine).counts() == counts

    code, forced = run_json(cli, *args, "--force")
    assert code == 0
    assert all(len(c["results"]) == 3 for c in forced["commits"])
    assert SqlStore(engine).counts()["runs"] == 6


def test_filter_selects_cases(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, _ = bench_repo(tmp_path / "repo", commits=1)
    base = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--force")
    _, substring = run_json(cli, *base, "--filter", "size=2")
    assert [r["case"] for r in substring["commits"][0]["results"]] == [CASES[1]]
    _, glob = run_json(cli, *base, "--filter", "*size=[13]]")
    assert [r["case"] for r in glob["commits"][0]["results"]] == [CASES[0], CASES[2]]


def test_a_broken_commit_records_a_failure_and_the_others_run(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    g, shas = bench_repo(tmp_path / "repo", commits=2)
    bad = g.commit("break the bench", {"benches/bench_model.py": "def broken(:\n"})
    good = g.commit("fix the bench", {"benches/bench_model.py": BENCH_MODULE})
    out = tmp_path / "r"
    code, report = run_json(cli, "--repo", str(g.path), "--results", str(out), f"{shas[0]}..{good}")
    assert code == 1
    by_sha = {c["sha"]: c["results"] for c in report["commits"]}
    assert list(by_sha) == [shas[1], bad, good]
    (failure,) = by_sha[bad]
    assert (failure["case"], failure["status"]) == ("bench_model", "failed")
    assert "SyntaxError" in failure["error"]
    assert (
        [r["status"] for r in by_sha[shas[1]]] == [r["status"] for r in by_sha[good]] == ["ok"] * 3
    )
    status = {read_run(f).header.commit.sha: read_run(f).end.status for f in find_runs(out)}  # type: ignore[union-attr]
    assert status == {shas[1]: "ok", bad: "failed", good: "ok"}


def test_setup_runs_in_the_worktree_and_its_failure_is_recorded(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    g, _ = bench_repo(tmp_path / "repo", commits=1)
    base = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--force")
    code, ok = run_json(cli, *base, "--setup", "test -f model.py && touch built.marker")
    assert code == 0
    assert [r["status"] for r in ok["commits"][0]["results"]] == ["ok"] * 3
    assert not (g.path / "built.marker").exists()  # it ran in the worktree, not here
    code, failed = run_json(cli, *base, "--setup", "echo compiling; exit 3")
    assert code == 1
    (result,) = failed["commits"][0]["results"]
    assert (result["case"], result["status"]) == ("commitbench.setup", "failed")
    assert result["error"].startswith("setup command exited with 3:\ncompiling")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_keeps_finished_results_and_leaves_no_worktree(  # type: ignore[no-untyped-def]
    db_env: str, engine: Engine, tmp_path: Path, signum: signal.Signals
) -> None:
    g, _ = bench_repo(tmp_path / "repo", commits=1, slow=True)
    command = [
        sys.executable,
        "-m",
        "commitbench",
        "run",
        "--repo",
        str(g.path),
        "--benches",
        "benches",
        "--pass-env",
        "COMMITBENCH_TEST_GATE",
    ]
    gate = tmp_path / "gate"
    env = {**os.environ, "COMMITBENCH_TEST_GATE": str(gate)}
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A child of a background job inherits SIGINT ignored; a user's Ctrl-C is not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    with engine.connect() as conn:
        while conn.execute(text("SELECT count(*) FROM results")).scalar_one() < 3:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.01)
            conn.rollback()
    proc.send_signal(signum)  # bench_slow waits at its gate, still closed
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert g.git("worktree", "list", "--porcelain").count("worktree ") == 1
    assert not [p for p in Path("/tmp").glob(f"commitbench-wt-{proc.pid}-*")]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM runs")).scalar_one() == "interrupted"
    assert SqlStore(engine).counts()["results"] == 3

    gate.touch()
    resumed = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, check=False, env=env
    )
    assert resumed.returncode == 0, resumed.stderr
    (commit,) = json.loads(resumed.stdout)["commits"]
    assert commit["already_recorded"] == 3
    assert [r["case"] for r in commit["results"]] == SLOW_CASES
    assert SqlStore(engine).counts()["results"] == 5


def test_quick_runs_every_case_once_and_records_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, _ = bench_repo(tmp_path / "repo", commits=2)
    out = tmp_path / "r"
    code, report = run_json(
        cli, "--repo", str(g.path), "--results", str(out), "--quick", "main~1..main"
    )
    assert code == 0
    assert report["location"] == "nothing recorded (--quick)"
    (commit,) = report["commits"]
    assert commit["run_id"] is None
    assert [(r["case"], r["status"]) for r in commit["results"]] == [(c, "ok") for c in CASES]
    assert not out.exists()
