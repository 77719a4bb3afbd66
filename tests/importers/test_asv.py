"""`commitbench import --format asv` on a results directory the real asv wrote
(conftest.py: two commits, `asv run` in the existing environment), through the real CLI
into the real PostgreSQL."""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from commitbench.store.sql import SqlStore
from tests.importers.conftest import ORIGIN_PUBLIC, AsvProject

BUILD = [
    f"bench.TimeBuild.time_build[kind={kind},n={n}]"
    for kind in ("list", "tuple")
    for n in (10, 100)
]
CASES = sorted(
    [
        *BUILD,
        "bench.TimeSkip.time_step[step=1]",
        "bench.TimeSkip.time_step[step=2]",
        "bench.mem_list",
        "bench.peakmem_list",
        "bench.time_fails",
        "bench.track_widgets",
    ]
)


def rows(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    """(sha, case label) -> the result with its one metric (or none)."""
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT co.sha, c.label, r.status, r.error, m.name, m.unit, m.n, m.median,"
                " m.samples, m.properties"
                " FROM results r JOIN cases c ON c.id = r.case_id"
                " JOIN runs ru ON ru.id = r.run_id JOIN commits co ON co.id = ru.commit_id"
                " LEFT JOIN metrics m ON m.result_id = r.id"
            )
        ).mappings()
        return {(row["sha"], row["label"]): dict(row) for row in found}


def asv_results(project: AsvProject, sha: str) -> dict[str, list[Any]]:
    return dict(json.loads(project.result_file(sha).read_text())["results"])


def test_a_results_directory_becomes_a_run_per_commit(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, asv_project: AsvProject
) -> None:
    out = cli("import", "--format", "asv", str(asv_project.results),
              "--repo", str(asv_project.repo.path))  # fmt: skip
    assert (out.code, out.out) == (0, "imported 2 runs: 20 new results (0 already present)\n")
    found = rows(engine)
    first, second = asv_project.shas
    assert sorted(label for sha, label in found if sha == first) == CASES
    assert sorted(label for sha, label in found if sha == second) == CASES
    for sha in asv_project.shas:
        skipped = found[(sha, "bench.TimeSkip.time_step[step=2]")]
        assert (skipped["status"], skipped["error"], skipped["name"]) == (
            "skipped",
            "asv skipped this combination (n/a)",
            None,
        )
        failed = found[(sha, "bench.time_fails")]
        assert (failed["status"], failed["error"]) == (
            "failed",
            "asv recorded no value: the benchmark failed",
        )
    # The first commit was run without --record-samples: asv's value (its median), n =
    # its repeat count; the second with: the samples, and commitbench's own median.
    raw = asv_results(asv_project, first)["bench.TimeBuild.time_build"]
    for i, label in enumerate(BUILD_ORDER):
        m = found[(first, label)]
        assert (m["status"], m["name"], m["unit"]) == ("ok", "time", "s")
        assert (m["n"], m["median"], m["samples"]) == (3, raw[0][i], None)
    raw = asv_results(asv_project, second)["bench.TimeBuild.time_build"]
    samples = raw[11]
    for i, label in enumerate(BUILD_ORDER):
        m = found[(second, label)]
        assert m["samples"] == samples[i] and m["n"] == 3
        assert m["median"] == statistics.median(samples[i]) == raw[0][i]
        assert m["properties"]["asv_version"] == raw[2]
    for sha, value in zip(asv_project.shas, (1, 2), strict=True):
        track = found[(sha, "bench.track_widgets")]
        assert (track["name"], track["unit"], track["n"], track["median"]) == (
            "track",
            "widgets",
            1,
            value,
        )
        assert found[(sha, "bench.mem_list")]["unit"] == "bytes"
        assert found[(sha, "bench.peakmem_list")]["name"] == "peakmem"
    with engine.connect() as conn:
        commits = conn.execute(
            text("SELECT repository, sha, parents, subject FROM commits ORDER BY committed_at")
        ).all()
        machine = conn.execute(text("SELECT cpu_model, cpu_count, info FROM machines")).one()
    assert [tuple(c) for c in commits] == [
        (ORIGIN_PUBLIC, first, [], "version 1"),
        (ORIGIN_PUBLIC, second, [first], "version 2"),
    ]
    assert machine[:2] == ("Test CPU 3000", 4)
    assert "testbox" not in json.dumps(machine[2])  # the machine's name is not a fact


# asv's order of the parameter combinations: itertools.product(n, kind).
BUILD_ORDER = [
    f"bench.TimeBuild.time_build[kind={kind},n={n}]"
    for n in (10, 100)
    for kind in ("list", "tuple")
]


def test_importing_twice_adds_nothing_and_the_series_has_both_commits(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, asv_project: AsvProject
) -> None:
    args = ("import", "--format", "asv", str(asv_project.results))
    assert cli(*args, "--repo", str(asv_project.repo.path)).code == 0
    counts = SqlStore(engine).counts()
    again = cli(*args, "--repo", str(asv_project.repo.path))
    assert (again.code, again.out) == (0, "imported 2 runs: 0 new results (20 already present)\n")
    assert SqlStore(engine).counts() == counts
    assert (counts["runs"], counts["results"], counts["metrics"]) == (2, 20, 16)
    with engine.connect() as conn:
        points = conn.execute(
            text(
                "SELECT sha, value, profile FROM series_points WHERE metric = 'track'"
                " AND case_label = 'bench.track_widgets' ORDER BY committed_at"
            )
        ).all()
    assert [tuple(p) for p in points] == [
        (asv_project.shas[0], 1.0, "full"),
        (asv_project.shas[1], 2.0, "full"),
    ]


def _truncate(results: Path, project: AsvProject) -> str:
    path = results / "testbox" / project.result_file(project.shas[1]).name
    path.write_text(path.read_text()[:-2])
    return f"{path}: not JSON (line 1 column "


def _old_version(results: Path, project: AsvProject) -> str:
    path = results / "testbox" / project.result_file(project.shas[0]).name
    doc = json.loads(path.read_text())
    doc["version"] = 1
    path.write_text(json.dumps(doc))
    return f"{path}: field version: 1, not 2 (run `asv update` first)"


def _no_index(results: Path, project: AsvProject) -> str:
    (results / "benchmarks.json").unlink()
    return (
        f"{results}: no benchmarks.json (give asv's results directory: the folder holding "
        "benchmarks.json and one folder per machine)"
    )


def _params_disagree(results: Path, project: AsvProject) -> str:
    index = results / "benchmarks.json"
    doc = json.loads(index.read_text())
    doc["bench.TimeBuild.time_build"]["param_names"] = ["n"]
    index.write_text(json.dumps(doc))
    path = results / "testbox" / project.result_file(project.shas[0]).name
    return (
        f"{path}: field results.bench.TimeBuild.time_build.params: 2 lists, but "
        "benchmarks.json names 1"
    )


def _unknown_commit(results: Path, project: AsvProject) -> str:
    path = results / "testbox" / project.result_file(project.shas[1]).name
    doc = json.loads(path.read_text())
    doc["commit_hash"] = "f" * 40
    path.write_text(json.dumps(doc))
    return (
        f"{path}: field commit_hash: commit {'f' * 40} is not in the repository at "
        f"{project.repo.path.resolve()} (fetch it, or pass --repository URL to import "
        "without a clone)"
    )


def _infinite_sample(results: Path, project: AsvProject) -> str:
    path = results / "testbox" / project.result_file(project.shas[1]).name
    doc = json.loads(path.read_text())
    doc["results"]["bench.TimeBuild.time_build"][11][0][1] = float("inf")
    path.write_text(json.dumps(doc))
    return (
        f"{path}: results.bench.TimeBuild.time_build[0]: metric time: sample 2 is inf, "
        "not a measurement"
    )


FAULTS: dict[str, Callable[[Path, AsvProject], str]] = {
    "truncated result file": _truncate,
    "results format 1": _old_version,
    "no benchmarks.json": _no_index,
    "param names disagree": _params_disagree,
    "unknown commit": _unknown_commit,
    "infinite sample": _infinite_sample,
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, asv_project: AsvProject, tmp_path: Path, fault: str
) -> None:
    results = tmp_path / "results"
    shutil.copytree(asv_project.results, results)
    repo = ("--repo", str(asv_project.repo.path))
    counts = SqlStore(engine).counts()
    expected = FAULTS[fault](results, asv_project)
    out = cli("import", "--format", "asv", str(results), *repo)
    assert (out.code, out.out) == (2, ""), out
    if fault == "truncated result file":
        assert out.err.startswith(f"commitbench: error: {expected}"), out.err
        assert out.err.count("\n") == 1
    else:
        assert out.err == f"commitbench: error: {expected}\n"
    assert SqlStore(engine).counts() == counts


def test_commit_is_refused_for_asv(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, asv_project: AsvProject
) -> None:
    out = cli("import", "--format", "asv", str(asv_project.results), "--commit", "HEAD")
    assert (out.code, out.err) == (
        2,
        "commitbench: error: --commit is for pytest-benchmark files (asv names each)\n",
    )


def test_repo_options_are_refused_for_csv(  # type: ignore[no-untyped-def]
    cli, db_env: str, asv_project: AsvProject
) -> None:
    out = cli("import", str(asv_project.results), "--repository", "https://example.com/x.git")
    assert (out.code, out.err) == (
        2,
        "commitbench: error: --repo, --repository and --commit are for pytest-benchmark and asv\n",
    )


def test_a_benchmark_no_longer_in_benchmarks_json_is_left_out_and_counted(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, asv_project: AsvProject, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    shutil.copytree(asv_project.results, results)
    index = results / "benchmarks.json"
    doc = json.loads(index.read_text())
    del doc["bench.time_fails"]
    index.write_text(json.dumps(doc))
    out = cli("import", "--format", "asv", str(results), "--repo", str(asv_project.repo.path))
    assert (out.code, out.out) == (0, "imported 2 runs: 18 new results (0 already present)\n")
    with engine.connect() as conn:
        left_out = conn.execute(
            text("SELECT environment->'imported'->>'left_out' FROM runs")
        ).scalars()
        assert sorted(left_out) == ["1", "1"]
    assert all(label != "bench.time_fails" for _, label in rows(engine))
