"""`commitbench show`: one recorded result in full, from CSV and from PostgreSQL."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine

from commitbench.model.cases import CaseKey
from commitbench.model.records import CommitInfo, ResultRecord, RunHeader, RunInfo
from commitbench.runner.recorder import MetricsRecorder
from commitbench.runner.vcs import Repository
from commitbench.store.csv import CsvStore
from tests import factories as f
from tests.cli.test_bad_input import one_error_line
from tests.cli.test_output import table_rows
from tests.gitrepo import FLAKY_CASES, flaky_repo

FAILED = FLAKY_CASES[1]


@pytest.fixture(params=["csv", "postgresql"])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, ...]:
    if request.param == "csv":
        return ("--results", str(tmp_path / "r"))
    db_env: str = request.getfixturevalue("db_env")
    return ("--db", db_env)


def test_show_a_failed_and_an_ok_result(cli, store_args, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, sha = flaky_repo(tmp_path / "repo")
    where = ("--repo", str(g.path), *store_args)
    ran = cli("run", *where, "--benches", "benches/bench_flaky.py", "--json")
    assert ran.code == 1
    run_id = json.loads(ran.out)["commits"][0]["run_id"]

    text = cli("show", "--case", FAILED, *where)  # REV defaults to HEAD
    assert (text.code, text.err) == (0, "")
    lines = text.out.splitlines()
    assert lines[:4] == [
        f"case:     {FAILED}",
        "status:   failed",
        f"commit:   {sha[:12]} flaky",
        f"run:      {run_id} (smoke, manual, failed)",
    ]
    assert "at:       benches/bench_flaky.py:9" in lines
    error = lines.index("error:")
    assert lines[error + 1] == "Traceback (most recent call last):"
    assert 'raise ValueError(f"boom {n}")' in text.out  # the whole traceback
    # The traceback's last line; a device table follows it where the sampler ticked while
    # the case ran (on a loaded machine it may).
    block = lines[error + 1 : lines.index("environment:")]
    following = block[block.index("ValueError: boom 2") + 1 :]
    assert following == [""] or "device sample" in following[0]

    data = json.loads(cli("show", sha[:8], "--case", FAILED, *where, "--json").out)
    assert (data["status"], data["failure_site"], data["metrics"]) == (
        "failed",
        "benches/bench_flaky.py:9",
        [],
    )
    assert data["error"].rstrip().endswith("ValueError: boom 2")
    assert (data["run"]["id"], data["run"]["status"], data["commit"]["sha"]) == (
        run_id,
        "failed",
        sha,
    )
    assert data["environment"]["python"]

    ok = json.loads(cli("show", "HEAD", "--case", FLAKY_CASES[0], *where, "--json").out)
    assert ok["status"] == "ok" and ok["error"] is None and ok["failure_site"] is None
    assert [m["name"] for m in ok["metrics"]][:3] == ["count", "time", "peak_rss"]
    shown = cli("show", "HEAD", "--case", FLAKY_CASES[0], *where).out
    # The metric column is as wide as its longest name (state.calibration_start_ms).
    assert re.search(r"┃ metric +┃ n ┃ median", shown)
    assert {row[0] for row in table_rows(shown) if row[0].startswith("state.")} >= {
        "state.wall_per_cpu",
        "state.load_avg",
        "state.calibration_start_ms",
        "state.calibration_end_ms",
    }  # and state.cpu_steal_pct where a clock tick passed during the case
    assert [row[:2] for row in table_rows(shown) if row[0] == "time"] == [["time", "3"]]


def test_show_picks_the_latest_run_or_the_one_asked_for(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, sha = flaky_repo(tmp_path / "repo")
    where = ("--repo", str(g.path), "--results", str(tmp_path / "r"))
    runs = []
    for _ in range(2):
        ran = cli("run", *where, "--benches", "benches/bench_flaky.py", "--force", "--json")
        runs.append(json.loads(ran.out)["commits"][0]["run_id"])
    latest = json.loads(cli("show", "--case", FAILED, *where, "--json").out)
    assert latest["run"]["id"] == runs[1]
    first = json.loads(cli("show", "--case", FAILED, *where, "--run", runs[0], "--json").out)
    assert first["run"]["id"] == runs[0]
    again = json.loads(cli("show", sha, "--case", FAILED, *where, "--run", runs[0], "--json").out)
    assert again["run"]["id"] == runs[0]


def test_show_bad_input(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, sha = flaky_repo(tmp_path / "repo")
    results = tmp_path / "r"
    where = ("--repo", str(g.path), "--results", str(results))
    one_error_line(
        cli("show", "--case", FAILED, *where),
        f"nothing is recorded for {sha[:12]} in {results}; measure it first: "
        f"commitbench run {sha[:12]}",
    )
    ran = cli("run", *where, "--benches", "benches/bench_flaky.py", "--json")
    run_id = json.loads(ran.out)["commits"][0]["run_id"]
    one_error_line(
        cli("show", "--case", "bench_flaky.work[n=3]", *where),
        f"no result of case 'bench_flaky.work[n=3]' in {sha[:12]} (3 cases there); "
        "did you mean 'bench_flaky.work[n=2]'?",
    )
    one_error_line(
        cli("show", "--case", FAILED, *where, "--run", "nope"),
        "--run takes a run UUID, not 'nope'",
    )
    missing = uuid.UUID(int=7)
    one_error_line(
        cli("show", "--case", FAILED, *where, "--run", str(missing)),
        f"no run {missing} in {results}",
    )
    one_error_line(
        cli("show", "nope", "--case", FAILED, *where),
        f"revision 'nope' does not resolve to a commit in {g.path.resolve()}",
    )
    parent = g.commit("second")
    one_error_line(
        cli("show", parent, "--case", FAILED, *where, "--run", run_id),
        f"run {run_id} measured {sha[:12]}, not {parent} ({parent[:12]})",
    )
    # A result measured on another machine only: shown by --run, never silently.
    other = RunHeader(
        run=RunInfo(id=uuid.uuid4(), started_at=f.T0, profile="full"),
        commit=CommitInfo(repository=Repository(g.path).id, sha=parent),
        machine=f.machine(),
    )
    with MetricsRecorder(CsvStore(results), other) as rec:
        rec.add(ResultRecord(CaseKey.of("bench_flaky.work", {"n": 2}), "ok"))
    one_error_line(
        cli("show", parent, "--case", FAILED, *where),
        f"{FAILED} at {parent[:12]} was measured on other machines only: pick one with "
        f"--run UUID ({other.run.id} (NVIDIA H100 80GB HBM3))",
    )
    shown = json.loads(
        cli("show", "--case", FAILED, *where, "--run", str(other.run.id), "--json").out
    )
    assert (shown["status"], shown["machine"]["label"]) == ("ok", "NVIDIA H100 80GB HBM3")


def test_show_summarises_the_device_samples(cli, db_env: str, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    from commitbench.store.sql import SqlStore

    header = f.header()
    with MetricsRecorder(SqlStore(engine), header) as rec:
        rec.add(f.result(i=0))  # 3 ticks x 2 GPUs, 100 ms apart
    label = "matmul.matmul[i=0,impl=fp16,shape=4k]"
    shown = cli("show", "--case", label, "--run", str(header.run.id), "--json")
    assert shown.code == 0, shown.err
    device = json.loads(shown.out)["device"]
    assert (device["samples"], device["span_s"]) == (6, 0.2)
    fields = device["fields"]
    assert fields["gpu_util_pct"] == {"unit": "%", "mean": 1.0, "max": 2.0}
    assert fields["power_w"] == {"unit": "W", "mean": 300.75, "max": 301.25}
    assert fields["cpu_util_pct"] == {"unit": "%", "mean": 12.5, "max": 12.5}
    text = cli("show", "--case", label, "--run", str(header.run.id)).out
    assert "6 device samples over 0.2 s" in text
    assert ["GPU power", "300.8 W", "301.2 W"] in table_rows(text)
