"""`commitbench import --format pytest-benchmark` on files the real pytest-benchmark wrote
(conftest.py), through the real CLI into the real PostgreSQL."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from commitbench.store.sql import SqlStore
from tests.conftest import Outcome
from tests.importers.conftest import ORIGIN_PUBLIC, PytestProject, run_pytest_benchmark

CASES = [
    "benches.test_speed.TestKinds.test_build[kind=list]",
    "benches.test_speed.TestKinds.test_build[kind=tuple]",
    "benches.test_speed.test_work[n=1000]",
    "benches.test_speed.test_work[n=10]",
]


def metrics(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.label, m.name, m.unit, m.direction, m.n, m.median, m.mean, m.min,"
                " m.max, m.ci_low, m.samples, m.properties, r.status"
                " FROM metrics m JOIN results r ON r.id = m.result_id"
                " JOIN cases c ON c.id = r.case_id ORDER BY c.label"
            )
        ).mappings()
        return {row["label"]: dict(row) for row in rows}


def by_case(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for b in doc["benchmarks"]:
        node = b["fullname"].split("[")[0].replace("benches/test_speed.py::", "")
        params = ",".join(f"{k}={v}" for k, v in sorted((b["params"] or {}).items()))
        out[f"benches.test_speed.{node.replace('::', '.')}" + (f"[{params}]" if params else "")] = b
    return out


def refused(outcome: Outcome, expected: str) -> None:
    assert (outcome.code, outcome.out) == (2, ""), outcome
    assert outcome.err == f"commitbench: error: {expected}\n"


def test_a_file_with_raw_data_becomes_a_run_of_the_commit_with_its_samples(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, pb_project: PytestProject
) -> None:
    out = cli("import", "--format", "pytest-benchmark", str(pb_project.json),
              "--repo", str(pb_project.repo.path))  # fmt: skip
    assert (out.code, out.out) == (0, "imported 1 run: 4 new results (0 already present)\n")
    found = metrics(engine)
    assert sorted(found) == sorted(CASES)
    raw = by_case(pb_project.load())
    for label, m in found.items():
        data = raw[label]["stats"]["data"]
        assert (m["name"], m["unit"], m["direction"], m["status"]) == ("time", "s", "lower", "ok")
        assert m["samples"] == data
        assert m["n"] == len(data) == raw[label]["stats"]["rounds"]
        assert m["median"] == statistics.median(data)
        assert m["min"] == min(data)
        assert m["ci_low"] is not None
        assert m["properties"]["iterations"] == raw[label]["stats"]["iterations"]
    build = found["benches.test_speed.TestKinds.test_build[kind=list]"]
    assert build["n"] == 7  # pedantic(rounds=7)
    assert build["properties"] == {
        "source": "pytest-benchmark",
        "iterations": 2,
        "rounds": 7,
        "extra_info": {"items": 3},
    }
    with engine.connect() as conn:
        commit = conn.execute(
            text("SELECT repository, sha, subject, parents, committed_at FROM commits")
        ).one()
        run = conn.execute(text("SELECT branch, profile, trigger, status FROM runs")).one()
        machine = conn.execute(text("SELECT cpu_count, info FROM machines")).one()
    repo = pb_project.repo
    assert commit[:4] == (
        ORIGIN_PUBLIC,
        pb_project.sha,
        "speed tests",
        [repo.git("rev-parse", "HEAD~1")],
    )
    assert commit[4].isoformat() == repo.git("show", "-s", "--format=%cI", "HEAD")
    assert tuple(run) == ("main", "full", "manual", "ok")
    info = pb_project.load()["machine_info"]
    assert machine[0] == info["cpu"]["count"]
    assert machine[1]["python_version"] == info["python_version"]
    assert "node" not in machine[1] and info["node"] not in json.dumps(machine[1])


def test_importing_the_same_file_twice_adds_nothing(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, pb_project: PytestProject, tmp_path: Path
) -> None:
    args = ("import", "--format", "pytest-benchmark", "--repo", str(pb_project.repo.path))
    assert cli(*args, str(pb_project.json)).code == 0
    counts = SqlStore(engine).counts()
    # The same content under another name is the same run.
    copy = tmp_path / "renamed.json"
    shutil.copy(pb_project.json, copy)
    again = cli(*args, str(copy))
    assert (again.code, again.out) == (0, "imported 1 run: 0 new results (4 already present)\n")
    assert SqlStore(engine).counts() == counts
    assert counts["runs"] == 1 and counts["results"] == 4 and counts["metrics"] == 4


def test_a_file_without_raw_data_keeps_pytest_benchmarks_statistics(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, pb_project: PytestProject
) -> None:
    out = cli("import", "--format", "pytest-benchmark", str(pb_project.stats_only),
              "--repo", str(pb_project.repo.path), "--json")  # fmt: skip
    assert (out.code, json.loads(out.out)) == (
        0,
        {"runs": 1, "results_seen": 4, "results_added": 4, "artifacts_added": 0},
    )
    raw = by_case(pb_project.load(pb_project.stats_only))
    for label, m in metrics(engine).items():
        stats = raw[label]["stats"]
        assert "data" not in stats
        assert m["samples"] is None and m["ci_low"] is None
        assert (m["n"], m["median"], m["mean"], m["min"], m["max"]) == (
            stats["rounds"], stats["median"], stats["mean"], stats["min"], stats["max"],
        )  # fmt: skip


def test_without_repo_the_current_directory_is_the_clone(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, pb_project: PytestProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(pb_project.repo.path / "benches")
    assert cli("import", "--format", "pytest-benchmark", str(pb_project.json)).code == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT repository, sha FROM commits")).one() == (
            ORIGIN_PUBLIC,
            pb_project.sha,
        )


def test_repository_url_imports_without_a_clone(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, pb_project: PytestProject, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # not a repository
    refused(
        cli("import", "--format", "pytest-benchmark", str(pb_project.json)),
        "not a git repository: .: pass --repo PATH (a clone holding the commits) or "
        "--repository URL",
    )
    url = "https://someone:hunter2@git.example.org/team/speed.git"
    out = cli("import", "--format", "pytest-benchmark", str(pb_project.json), "--repository", url)
    assert out.code == 0, out
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT repository, sha, parents, subject, committed_at FROM commits")
        ).one()
    when = pb_project.load()["commit_info"]["time"]
    assert row[:4] == ("https://git.example.org/team/speed.git", pb_project.sha, [], None)
    assert row[4].isoformat() == when
    assert "hunter2" not in out.text


def test_a_dirty_tree_is_refused_unless_the_commit_is_named(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, pb_project: PytestProject, tmp_path: Path
) -> None:
    work = tmp_path / "clone"
    pb_project.repo.git("clone", "-q", str(pb_project.repo.path), str(work))
    (work / "README").write_text("changed, not committed\n")
    dirty = tmp_path / "dirty.json"
    assert run_pytest_benchmark(work, dirty)["commit_info"]["dirty"] is True
    args = ("import", "--format", "pytest-benchmark", str(dirty), "--repo", str(work))
    counts = SqlStore(engine).counts()
    refused(
        cli(*args),
        f"{dirty}: field commit_info.dirty: true: measured on uncommitted changes; "
        "pass --commit SHA to record it anyway",
    )
    assert SqlStore(engine).counts() == counts
    out = cli(*args, "--commit", "HEAD")
    assert (out.code, out.out) == (0, "imported 1 run: 4 new results (0 already present)\n")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sha FROM commits")).scalar_one() == pb_project.sha


def damaged(source: Path, target: Path, edit: Any) -> Path:
    doc = json.loads(source.read_text())
    edit(doc)
    target.write_text(json.dumps(doc))
    return target


def _nan_sample(doc: dict[str, Any]) -> None:
    doc["benchmarks"][2]["stats"]["data"][0] = float("nan")


def _no_commit(doc: dict[str, Any]) -> None:
    doc["commit_info"] = {"id": "unversioned", "dirty": False}


def _fewer_data(doc: dict[str, Any]) -> None:
    stats = doc["benchmarks"][0]["stats"]
    stats["data"], stats["rounds"] = stats["data"][:3], 4


def _params_list(doc: dict[str, Any]) -> None:
    doc["benchmarks"][0]["params"] = {"not an identifier": 1}


def _commit_elsewhere(doc: dict[str, Any]) -> None:
    doc["commit_info"]["id"] = "0" * 40


FAULTS = {
    "truncated": (None, "{path}: not JSON (line "),
    "NaN sample": (
        _nan_sample,
        "{path}: benchmarks[2].stats: metric time: sample 1 is nan, not a measurement",
    ),
    "no commit": (
        _no_commit,
        "{path}: field commit_info.id: 'unversioned' is not a commit sha; pass --commit SHA",
    ),
    "data and rounds disagree": (
        _fewer_data,
        "{path}: field benchmarks[0].stats.data: 3 times, but rounds is 4",
    ),
    "bad parameter name": (
        _params_list,
        "{path}: benchmarks[0].params: case benches.test_speed.test_work: param name "
        "'not an identifier' is not an identifier",
    ),
    "unknown commit": (
        _commit_elsewhere,
        "{path}: field commit_info.id: commit 0000000000000000000000000000000000000000 is not "
        "in the repository at {repo} (fetch it, or pass --repository URL to import without "
        "a clone)",
    ),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, pb_project: PytestProject, tmp_path: Path, fault: str
) -> None:
    repo = ("--repo", str(pb_project.repo.path))
    assert (
        cli("import", "--format", "pytest-benchmark", str(pb_project.stats_only), *repo).code == 0
    )
    counts = SqlStore(engine).counts()
    edit, message = FAULTS[fault]
    bad = tmp_path / "bad.json"
    if edit is None:
        bad.write_text(pb_project.json.read_text()[:-3])
    else:
        damaged(pb_project.json, bad, edit)
    out = cli("import", "--format", "pytest-benchmark", str(bad), *repo)
    assert (out.code, out.out) == (2, ""), out
    expected = message.format(path=bad, repo=pb_project.repo.path.resolve())
    if fault == "truncated":  # where the text ends depends on the machine's facts
        assert out.err.startswith(f"commitbench: error: {expected}"), out.err
    else:
        assert out.err == f"commitbench: error: {expected}\n"
    assert out.err.count("\n") == 1
    assert SqlStore(engine).counts() == counts


def test_a_storage_directory_imports_every_saved_run(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, pb_project: PytestProject, tmp_path: Path
) -> None:
    """pytest-benchmark's own history: `--benchmark-autosave` at two commits leaves
    `.benchmarks/<machine>/0001_<sha>_<time>.json` and `0002_...`; the folder imports as
    one run per file."""
    work = tmp_path / "clone"
    pb_project.repo.git("clone", "-q", str(pb_project.repo.path), str(work))
    storage = tmp_path / "storage"
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-autosave",
            f"--benchmark-storage=file://{storage}", "--benchmark-min-rounds=5",
            "--benchmark-max-time=0.002", "benches/test_speed.py"]  # fmt: skip
    git = ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com"]
    shas = []
    for message in ("first measured", "second measured"):
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", message], cwd=work, check=True)
        subprocess.run(args, cwd=work, check=True, capture_output=True, timeout=120)
        shas.append(subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, check=True,
                                   capture_output=True, text=True).stdout.strip())  # fmt: skip
    saved = sorted(p.name[:4] for p in storage.rglob("*.json"))
    assert saved == ["0001", "0002"]
    out = cli("import", "--format", "pytest-benchmark", str(storage), "--repo", str(work))
    assert (out.code, out.out) == (0, "imported 2 runs: 8 new results (0 already present)\n")
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT co.sha, co.subject, count(*) FROM results r JOIN runs ru"
                " ON ru.id = r.run_id JOIN commits co ON co.id = ru.commit_id"
                " GROUP BY co.sha, co.subject ORDER BY co.subject"
            )
        ).all()
    assert [tuple(row) for row in found] == [
        (shas[0], "first measured", 4),
        (shas[1], "second measured", 4),
    ]
    refused(
        cli("import", "--format", "pytest-benchmark", str(storage), "--commit", shas[0]),
        f"{storage}: --commit names one commit; give one file",
    )
