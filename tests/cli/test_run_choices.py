"""What `run` does with what a new user asks of it: a bench file, a filter that matches
nothing, --first-parent on one commit, failed cases recorded before, the headline column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commitbench.store.csv import find_runs, read_run
from tests.cli.test_bad_input import one_error_line
from tests.cli.test_output import table_rows
from tests.gitrepo import CASES, FLAKY_CASES, bench_repo, flaky_repo


def run_json(cli, *args: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def,type-arg]
    outcome = cli("run", "--json", *args)
    return outcome.code, json.loads(outcome.out)


def test_benches_may_name_one_module(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, _ = flaky_repo(tmp_path / "repo")
    base = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--force")
    code, report = run_json(cli, *base, "--benches", "benches/bench_model.py")
    assert code == 0
    assert [r["case"] for r in report["commits"][0]["results"]] == CASES  # that module only
    outside = tmp_path / "bench_model.py"
    outside.write_text((g.path / "benches" / "bench_model.py").read_text())
    (tmp_path / "model.py").write_text((g.path / "model.py").read_text())
    code, report = run_json(cli, *base, "--benches", str(outside))
    assert code == 0
    assert [r["case"] for r in report["commits"][0]["results"]] == CASES
    one_error_line(
        cli("run", *base, "--benches", "benches/nope.py"),
        "bench module 'benches/nope.py' is not in the commit",
    )
    one_error_line(
        cli("run", *base, "--benches", "notes.txt"),
        "--benches notes.txt is a file: give a bench directory or a .py bench module",
    )
    one_error_line(
        cli("run", *base, "--benches", str(g.path / "notes.txt")),
        f"--benches {g.path / 'notes.txt'} is a file: give a bench directory or a .py bench module",
    )


def test_first_parent_without_a_walk_is_refused(cli, git_repo: Path) -> None:  # type: ignore[no-untyped-def]
    one_error_line(
        cli("run", "--repo", str(git_repo), "main", "--first-parent"),
        "--first-parent walks history, but main names one commit: give a range (A..main), "
        "--max-count N or --since DATE",
    )
    one_error_line(
        cli("enqueue", "--repo", str(git_repo), "main", "--first-parent"),
        "--first-parent walks history, but main names one commit: give a range (A..main), "
        "--max-count N or --since DATE",
    )


def test_a_filter_that_matches_nothing_is_bad_input(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, _ = bench_repo(tmp_path / "repo", commits=1)
    base = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--benches", "benches")
    assert cli("run", *base).code == 0  # three cases recorded: the filter must still say
    one_error_line(
        cli("run", *base, "--json", "--filter", "nomatch"),
        "no case matches --filter 'nomatch' in benches",
    )
    outcome = cli("run", *base, "--filter", "nomatch")
    assert (outcome.code, outcome.out) == (2, "")
    assert outcome.err.endswith(
        "  nothing to do: no case selected\n"
        "commitbench: error: no case matches --filter 'nomatch' in benches\n"
    )
    assert "recorded before" not in outcome.err
    assert len(find_runs(tmp_path / "r")) == 1  # nothing recorded


def test_already_recorded_counts_only_the_selected_cases(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, _ = flaky_repo(tmp_path / "repo")
    base = ("--repo", str(g.path), "--results", str(tmp_path / "r"))
    assert run_json(cli, *base, "--benches", "other")[0] == 0  # 3 cases of another directory
    code, report = run_json(cli, *base, "--benches", "benches/bench_model.py")
    assert code == 0
    (commit,) = report["commits"]
    assert (commit["already_recorded"], len(commit["results"])) == (0, 3)
    code, report = run_json(cli, *base, "--benches", "benches", "--filter", "bench_model")
    (commit,) = report["commits"]
    assert (commit["already_recorded"], commit["results"]) == (3, [])
    code, report = run_json(cli, *base, "--benches", "benches", "--filter", "size=2")
    (commit,) = report["commits"]
    assert (commit["already_recorded"], commit["results"]) == (1, [])


def test_failed_cases_are_named_and_retried_on_request(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    g, _ = flaky_repo(tmp_path / "repo")
    base = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--benches")
    base += ("benches/bench_flaky.py",)
    first = cli("run", *base)
    assert first.code == 1
    # The failure line names the innermost frame of the bench's own code.
    line = "  failed: bench_flaky.work[n=2] at benches/bench_flaky.py:9: ValueError: boom 2\n"
    assert first.out.endswith(
        f"3 results for 1 commit: {tmp_path / 'r'}; 0 already recorded, 1 failed now\n{line}"
    )
    assert line in first.err  # the progress line too

    again = cli("run", *base)
    assert again.code == 0
    assert again.err.endswith(
        "  nothing to do: 3 cases recorded before, 1 of them failed "
        "(--retry-failed measures it again)\n"
    )
    assert again.out == (
        f"0 results for 1 commit: {tmp_path / 'r'}; 3 already recorded (1 of them failed), "
        "0 failed now\n"
        "  1 recorded case failed before and was not measured again: --retry-failed "
        "measures it again, --force every case\n"
    )

    monkeypatch.setenv("COMMITBENCH_TEST_FIXED", "1")
    code, retried = run_json(cli, *base, "--retry-failed", "--pass-env", "COMMITBENCH_TEST_FIXED")
    assert code == 0
    (commit,) = retried["commits"]
    assert (commit["already_recorded"], commit["recorded_failed"]) == (2, 0)
    assert [(r["case"], r["status"]) for r in commit["results"]] == [(FLAKY_CASES[1], "ok")]
    assert commit["results"][0]["failure_site"] is None
    code, settled = run_json(cli, *base, "--retry-failed")
    (commit,) = settled["commits"]
    assert (code, commit["already_recorded"], commit["recorded_failed"], commit["results"]) == (
        0,
        3,
        0,
        [],
    )
    one_error_line(
        cli("run", *base, "--retry-failed", "--force"),
        "give --force (every case) or --retry-failed (failed ones), not both",
    )


def test_the_headline_is_the_first_timing_and_a_skip_has_no_metrics(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    g, _ = flaky_repo(tmp_path / "repo")
    out = tmp_path / "r"
    args = ("--repo", str(g.path), "--results", str(out), "--benches", "benches/bench_flaky.py")
    code, report = run_json(cli, *args)
    assert code == 1
    results = {r["case"]: r for r in report["commits"][0]["results"]}
    ok = results[FLAKY_CASES[0]]
    assert (ok["metric"], ok["unit"]) == ("time", "s")  # not `count`, recorded first
    assert 0 < ok["median"] < 0.01
    assert results[FLAKY_CASES[1]]["failure_site"] == "benches/bench_flaky.py:9"
    skipped = results[FLAKY_CASES[2]]
    assert (skipped["status"], skipped["metric"], skipped["median"]) == ("skipped", None, None)
    (folder,) = find_runs(out)
    stored = {r.case.label: r for r in read_run(folder).results}
    later = stored[FLAKY_CASES[2]]
    # Ticks landed on the 0.5 s case and are kept as samples, but a skip has no metrics.
    assert later.device_samples and later.metrics == ()
    table = cli("run", *args, "--force").out
    rows = {row[0]: row[1:] for row in table_rows(table)}
    assert rows[FLAKY_CASES[2]][:2] == ["skipped", "-"]
    assert rows[FLAKY_CASES[0]][0] == "ok" and rows[FLAKY_CASES[0]][1].endswith(("ns", "us", "ms"))
