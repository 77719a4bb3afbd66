"""Where output goes and what it says: tables and results on stdout, progress and warnings
on stderr; --db, --results and --json before or after the subcommand; plural forms;
--metric names that were never measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from commitbench.store.csv import CsvStore
from tests import factories as f
from tests.cli.test_bad_input import one_error_line
from tests.gitrepo import CASES, GitBuilder, bench_repo

MALFORMED = "postgresql://u@h:notaport/x"


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the rich tables in `text`, each as its stripped cells."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text.splitlines()
        if line.startswith("│")
    ]


MALFORMED_ERROR = "malformed database URL (expected postgresql://USER@HOST[:PORT]/DBNAME)"


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitBuilder, list[str], Path]:
    """The last two of three commits of the test repository (model.VERSION 1 and 2),
    measured into CSV."""
    root = tmp_path_factory.mktemp("measured")
    g, shas = bench_repo(root / "repo", commits=3)
    out = root / "results"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "commitbench", "run", "--repo", str(g.path)),
            *("--benches", "benches", "--results", str(out), f"{shas[0]}..{shas[2]}"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return g, shas[1:], out


def test_a_redirected_comparison_is_in_the_file(  # type: ignore[no-untyped-def]
    measured, tmp_path: Path
) -> None:
    """`commitbench compare A B > out.txt` writes the table (it went to stderr)."""
    g, (a, b), results = measured
    target = tmp_path / "out.txt"
    with target.open("w") as fh:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "commitbench", "compare", a, b),
                *("--repo", str(g.path), "--results", str(results)),
            ],
            stdout=fh,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert (done.returncode, done.stderr) == (0, "")
    text = target.read_text()
    assert text.splitlines()[0].strip() == f"{a[:12]} → {b[:12]}"
    cells = [row[:2] for row in table_rows(text)]
    for case in CASES:
        assert [case, "time"] in cells


def test_run_prints_its_summary_on_stdout_and_progress_on_stderr(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    g, (sha,) = bench_repo(tmp_path / "repo", commits=1)
    args = ("run", "--repo", str(g.path), "--benches", "benches", "--results", str(tmp_path / "r"))
    first = cli(*args)
    assert first.code == 0
    assert first.err.startswith(f"measuring 1 commit\n[1/1] {sha[:12]} version 0 (")
    assert f"  ok       {CASES[0]}  " in first.err
    assert "│ case " not in first.err
    assert [row[:2] for row in table_rows(first.out)] == [[case, "ok"] for case in CASES]
    assert first.out.endswith(
        f"3 results for 1 commit: {tmp_path / 'r'}; 0 already recorded, 0 failed now\n"
    )
    again = cli(*args)
    assert again.err.endswith("  nothing to do: 3 cases recorded before\n")
    assert again.out == (
        f"0 results for 1 commit: {tmp_path / 'r'}; 3 already recorded, 0 failed now\n"
    )
    quick = cli(*args, "--quick")  # measures, records nothing: not "nothing to do"
    assert "nothing to do" not in quick.text
    assert quick.out.endswith(
        "3 results for 1 commit: nothing recorded (--quick); 0 already recorded, 0 failed now\n"
    )


def test_compare_tables_go_to_stdout(cli, measured) -> None:  # type: ignore[no-untyped-def]
    g, (a, b), results = measured
    compared = cli("compare", a, b, "--repo", str(g.path), "--results", str(results))
    assert compared.err == ""
    assert "┃ verdict " in compared.out
    marked = cli("compare", a, b, "--repo", str(g.path), "--results", str(results), "--markdown")
    assert marked.err == "" and marked.out.startswith(f"### {a[:12]} → {b[:12]}\n")


def test_database_tables_go_to_stdout(cli, db_env: str, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    from commitbench.store.sql import SqlStore

    f.synthetic_history(SqlStore(engine), [1.0] * 30 + [1.10] * 30)
    detected = cli("detect")
    assert (detected.code, detected.err) == (1, "")
    assert detected.out.splitlines()[0].strip() == "1 change point"
    assert [row[:3] for row in table_rows(detected.out)] == [
        ["regression", "matmul.matmul[shape=4k]", "time"]
    ]
    listed = cli("regressions")
    assert (listed.code, listed.err) == (0, "")
    assert listed.out.splitlines()[0].strip() == "1 open regression"
    acked = cli("regressions", "ack", "1")
    assert (acked.out, acked.err) == ("regression 1 acknowledged\n", "")
    jobs = cli("jobs")
    assert (jobs.code, jobs.err) == (0, "")
    assert jobs.out.endswith("0 pending, 0 running, 0 done, 0 failed, 0 parked\n")
    current = cli("db", "current")
    assert current.err == "" and current.out.startswith("revision 0008 (up to date)\n")


def test_check_prints_its_tables_and_verdict_on_stdout(  # type: ignore[no-untyped-def]
    cli, measured
) -> None:
    g, (a, b), results = measured
    checked = cli(
        "check", a, b, "--repo", str(g.path), "--benches", "benches", "--results", str(results)
    )
    # Whether these tiny timings look slower at b is noise; where the output goes is not.
    assert checked.code in (0, 1), checked.err
    assert checked.err.startswith(f"measuring {a[:12]} (base) and {b[:12]} (head), interleaved\n")
    assert "┃" not in checked.err
    assert "┃ verdict " in checked.out
    (verdict,) = [line for line in checked.out.splitlines() if line.startswith("check ")]
    assert verdict.startswith(f"check {a[:12]} → {b[:12]}: ")


# Each command with arguments that reach the point where it opens the database.
COMMANDS = {
    "run": ["run", "--repo", "{repo}"],
    "compare": ["compare", "HEAD~1", "HEAD", "--repo", "{repo}"],
    "check": ["check", "HEAD~1", "HEAD", "--repo", "{repo}"],
    "bisect": ["bisect", "HEAD~1", "HEAD", "--case", "x", "--repo", "{repo}"],
    "detect": ["detect"],
    "regressions": ["regressions"],
    "regressions ack": ["regressions", "ack", "1"],
    "show": ["show", "HEAD", "--case", "x", "--repo", "{repo}"],
    "report": ["report", "--out", "{tmp}/report"],
    "export": ["export"],
    "import": ["import", "{tmp}"],
    "db upgrade": ["db", "upgrade"],
    "db current": ["db", "current"],
    "db create-readonly-role": ["db", "create-readonly-role", "grafana"],
    "enqueue": ["enqueue", "HEAD", "--repo", "{repo}"],
    "worker": ["worker", "--drain"],
    "jobs": ["jobs"],
}


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("command", COMMANDS, ids=list(COMMANDS))
def test_db_before_or_after_the_subcommand(  # type: ignore[no-untyped-def]
    cli, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, where: str
) -> None:
    monkeypatch.delenv("COMMITBENCH_DB", raising=False)
    monkeypatch.setenv("COMMITBENCH_READONLY_PASSWORD", "not-used")
    args = [a.format(repo=git_repo, tmp=tmp_path) for a in COMMANDS[command]]
    given = ["--db", MALFORMED]
    one_error_line(cli(*given, *args) if where == "before" else cli(*args, *given), MALFORMED_ERROR)


def test_the_subcommands_own_setting_wins(cli) -> None:  # type: ignore[no-untyped-def]
    one_error_line(
        cli("--db", "mysql://root@127.0.0.1/x", "db", "upgrade", "--db", MALFORMED),
        MALFORMED_ERROR,
    )
    one_error_line(
        cli("--db", MALFORMED, "db", "upgrade", "--db", "mysql://root@127.0.0.1/x"),
        "unsupported database URL scheme 'mysql': commitbench needs PostgreSQL",
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_results_and_json_before_or_after_the_subcommand(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.delenv("COMMITBENCH_DB", raising=False)
    monkeypatch.chdir(tmp_path)  # the default results directory would be empty here
    shas = f.synthetic_history(CsvStore(tmp_path / "results"), [1.0] * 30 + [0.8] * 30)
    given = ["--results", str(tmp_path / "results"), "--json"]
    outcome = cli(*given, "detect") if where == "before" else cli("detect", *given)
    assert outcome.code == 0, outcome.err
    (cp,) = json.loads(outcome.out)["change_points"]
    assert (cp["kind"], cp["sha"]) == ("improvement", shas[30])


def test_a_metric_that_was_not_measured_is_named(  # type: ignore[no-untyped-def]
    cli, measured, tmp_path: Path
) -> None:
    g, (a, b), results = measured
    outcome = cli(
        "compare", a, b, "--repo", str(g.path), "--results", str(results), "--metric", "tme"
    )
    assert outcome.code == 2 and outcome.out == ""
    # Which sampler summaries a case has depends on where the 100 ms ticks fell.
    prefix = (
        f"commitbench: error: no metric 'tme' at both {a[:12]} and {b[:12]}; "
        "did you mean 'time'? measured: "
    )
    assert outcome.err.startswith(prefix) and outcome.err.count("\n") == 1
    measured_names = outcome.err[len(prefix) :].strip().split(", ")
    assert {"time", "version", "peak_rss"} <= set(measured_names)

    f.synthetic_history(CsvStore(tmp_path / "history"), [1.0] * 12)
    one_error_line(
        cli("detect", "--results", str(tmp_path / "history"), "--metric", "tme"),
        f"no metric 'tme' in {tmp_path / 'history'}; did you mean 'time'? measured: time",
    )
