"""`commitbench enqueue` and `commitbench jobs` (the worker runs in tests/fleet)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.gitrepo import bench_repo


def test_enqueue_twice_then_list(cli, db_env: str, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, shas = bench_repo(tmp_path / "repo", commits=3)
    args = ("enqueue", "--repo", str(g.path), "--benches", "benches", "--machine-kind", "H100x2")
    first = cli(*args, "--json", "main~2..main")
    assert first.code == 0, first.err
    report = json.loads(first.out)
    assert (report["repository"], report["new"]) == (str(g.path.resolve()), 2)
    assert [j["sha"] for j in report["jobs"]] == shas[1:]  # oldest first
    again = cli(*args, "main~2..main", "main~2")
    assert again.code == 0
    assert again.err == ""
    assert again.out.endswith("1 job enqueued, 2 already queued: " + str(g.path.resolve()) + "\n")

    listed = cli("jobs", "--json", "--state", "pending")
    assert listed.code == 0
    data = json.loads(listed.out)
    assert data["counts"] == {"pending": 3, "running": 0, "done": 0, "failed": 0, "parked": 0}
    assert [(j["sha"], j["kind"], j["attempts"]) for j in data["jobs"]] == [
        (sha, "H100x2", 0)
        for sha in (shas[0], shas[2], shas[1])  # newest job first
    ]
    table = cli("jobs")
    assert table.code == 0
    assert "H100x2" in table.out and table.out.endswith(
        "3 pending, 0 running, 0 done, 0 failed, 0 parked\n"
    )


def test_follow_enqueues_new_commits(cli, db_env: str, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, shas = bench_repo(tmp_path / "repo", commits=2)
    args = ("enqueue", "--repo", str(g.path), "--follow", "main", "--json")
    assert [j["sha"] for j in json.loads(cli(*args).out)["jobs"]] == [shas[-1]]
    assert json.loads(cli(*args).out)["jobs"] == []
    new = [g.commit("three"), g.commit("four")]
    assert [j["sha"] for j in json.loads(cli(*args).out)["jobs"]] == new
    data = json.loads(cli("jobs", "--json").out)
    assert {(j["branch"], j["state"]) for j in data["jobs"]} == {("main", "pending")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("enqueue", "HEAD", "--follow", "main"), "give REVS or --follow BRANCH, not both"),
        (("enqueue",), "nothing to enqueue: give REVS or --follow BRANCH"),
        (("enqueue", "HEAD", "--machine-kind", "H100 80GB"), "machine kind 'H100 80GB'"),
    ],
)
def test_bad_enqueue_input_is_one_line(
    cli, db_env: str, args: tuple[str, ...], message: str
) -> None:  # type: ignore[no-untyped-def]
    outcome = cli(*args)
    assert outcome.code == 2
    assert outcome.err.startswith(f"commitbench: error: {message}")
    assert outcome.err.count("\n") == 1


def test_jobs_needs_a_database(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("COMMITBENCH_DB", raising=False)
    outcome = cli("jobs")
    assert (outcome.code, outcome.err) == (
        2,
        "commitbench: error: no database: pass --db URL or set COMMITBENCH_DB\n",
    )
