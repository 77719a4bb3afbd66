"""`--param NAME=V1,V2,...` (issue 15): sweeps from the command line in run, check,
bisect, compare --measure and enqueue, on real repositories, workers and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from commitbench.fleet.worker import FleetOptions, FleetWorker
from commitbench.store.csv import find_runs
from tests import factories as f
from tests.cli.test_bad_input import one_error_line
from tests.gitrepo import GitBuilder

SWEEP_MODULE = """\
import commitbench as cb
import model


@cb.bench(params={"size": [1, 2], "impl": ["a", "b"]})
def grid(ctx: cb.Context, size: int, impl: str) -> None:
    # Fixed samples (tests.gitrepo.DELAY_MODULE): verdicts depend on the commit alone.
    level = model.DELAY * size
    ctx.record("time", [level * (1 + 0.002 * (k - 7)) for k in range(15)], unit="s")
    ctx.record("peak_rss", [100.0], unit="MiB")


@cb.bench(params={"ratio": [0.5, 1], "on": [True, False]})
def mixed(ctx: cb.Context, ratio: float, on: bool) -> None:
    assert isinstance(on, bool), on  # typed by the worker, not passed as text
    ctx.record("value", ratio, unit="count")
    ctx.record("peak_rss", [100.0], unit="MiB")


@cb.bench
def plain(ctx: cb.Context) -> None:
    ctx.record("value", 1.0, unit="count")
    ctx.record("peak_rss", [100.0], unit="MiB")
"""

MIXED = [
    "sweep.mixed[on=true,ratio=0.5]",
    "sweep.mixed[on=false,ratio=0.5]",
    "sweep.mixed[on=true,ratio=1]",
    "sweep.mixed[on=false,ratio=1]",
]


def sweep_repo(path: Path, delays: list[float]) -> tuple[GitBuilder, list[str]]:
    """Commit i sets model.DELAY = delays[i]; benches/sweep.py as above."""
    g = GitBuilder(path)
    shas = [
        g.commit(f"delay {d}", {"model.py": f"DELAY = {d}\n", "benches/sweep.py": SWEEP_MODULE})
        for d in delays
    ]
    return g, shas


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitBuilder, list[str]]:
    """c0: 50 ms per size; c1: 55 ms (10% slower)."""
    return sweep_repo(tmp_path_factory.mktemp("sweep") / "repo", [0.050, 0.055])


def run_json(cli, *args: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def,type-arg]
    outcome = cli("run", "--json", *args)
    assert outcome.code in (0, 1), outcome
    return outcome.code, json.loads(outcome.out)


def labels(report: dict) -> list[str]:  # type: ignore[type-arg]
    return [r["case"] for c in report["commits"] for r in c["results"]]


def test_a_sweep_replaces_the_grid_of_the_benches_that_declare_it(
    cli, repo, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    g, (c0, c1) = repo
    base = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--benches", "benches")
    # 4 is new, 2 is declared; the repeated 4 counts once; impl's grid stays crossed.
    code, report = run_json(cli, *base, c0, "--param", "size=4,2,4")
    assert code == 0
    assert labels(report) == [
        "sweep.grid[impl=a,size=4]",
        "sweep.grid[impl=b,size=4]",
        "sweep.grid[impl=a,size=2]",
        "sweep.grid[impl=b,size=2]",
        *MIXED,  # declares no size: its grid as declared
        "sweep.plain",
    ]
    medians = {r["case"]: r["median"] for r in report["commits"][0]["results"]}
    assert medians["sweep.grid[impl=a,size=4]"] == pytest.approx(0.2, rel=1e-12)
    # The same sweep again: every case is recorded already, under the same id.
    code, again = run_json(cli, *base, c0, "--param", "size=4,2")
    assert (code, labels(again), again["commits"][0]["already_recorded"]) == (0, [], 9)
    # Another sweep of the same commit measures only what is new.
    code, more = run_json(cli, *base, c0, "--param", "size=4,8", "--filter", "grid")
    assert labels(more) == ["sweep.grid[impl=a,size=8]", "sweep.grid[impl=b,size=8]"]
    # Swept cases are series: at the next commit, compare (from the CSV) pairs them up.
    assert run_json(cli, *base, c1, "--param", "size=4", "--filter", "grid")[0] == 0
    compared = cli("compare", c0, c1, "--results", str(tmp_path / "r"), "--repo", str(g.path))
    rows = json.loads(
        cli(
            "compare", c0, c1, "--results", str(tmp_path / "r"), "--repo", str(g.path), "--json"
        ).out
    )["rows"]
    assert compared.code == 0  # one process a side: never significant
    assert sorted((r["case"], r["base"], r["head"]) for r in rows if r["metric"] == "time") == [
        ("sweep.grid[impl=a,size=4]", pytest.approx(0.2), pytest.approx(0.22)),
        ("sweep.grid[impl=b,size=4]", pytest.approx(0.2), pytest.approx(0.22)),
    ]


def test_values_take_the_type_of_the_declared_ones(cli, repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, (c0, _) = repo
    base = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--benches", "benches")
    code, report = run_json(
        cli,
        *base,
        c0,
        "--quick",
        "--param",
        "ratio=0.25, 2",  # ints and floats declared: floats (2 -> 2.0)
        "--param",
        "on=TRUE",
        "--param",
        "impl=c,1",  # strings: "1" stays a string, quoted in the id
    )
    assert code == 0, report
    assert labels(report) == [
        "sweep.grid[impl=c,size=1]",
        'sweep.grid[impl="1",size=1]',
        "sweep.grid[impl=c,size=2]",
        'sweep.grid[impl="1",size=2]',
        "sweep.mixed[on=true,ratio=0.25]",
        "sweep.mixed[on=true,ratio=2.0]",
        "sweep.plain",
    ]
    assert [r["status"] for r in report["commits"][0]["results"]] == ["ok"] * 7


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--param", "nope=1"),
            "--param nope: no selected bench declares a parameter 'nope' "
            "(declared: impl, on, ratio, size)",
        ),
        (
            # The filter leaves only `plain`, which declares nothing.
            ("--param", "size=1", "--filter", "plain"),
            "--param size: no selected bench declares a parameter 'size' (declared: none)",
        ),
        (
            ("--param", "size=1,big"),
            "--param size: 'big' is not an int, as sweep.grid declares size (1, 2)",
        ),
        (
            ("--param", "size=1.5"),
            "--param size: '1.5' is not an int, as sweep.grid declares size (1, 2)",
        ),
        (
            ("--param", "on=yes"),
            "--param on: 'yes' is not a bool, as sweep.mixed declares on (true, false)",
        ),
        (
            ("--param", "ratio=nan"),
            "--param ratio: 'nan' is not a float, as sweep.mixed declares ratio (0.5, 1)",
        ),
        (("--param", "batch"), "--param 'batch': expected NAME=V1,V2,... (e.g. --param batch=1,4)"),
        (("--param", "=1"), "--param '=1': expected NAME=V1,V2,... (e.g. --param batch=1,4)"),
        (
            ("--param", "batch="),
            "--param 'batch=': no values; expected NAME=V1,V2,... (e.g. --param batch=1,4)",
        ),
        (
            ("--param", "size=1,,2"),
            "--param 'size=1,,2': an empty value; expected NAME=V1,V2,... (e.g. --param batch=1,4)",
        ),
        (("--param", "a-b=1"), "--param 'a-b=1': 'a-b' is not a parameter name"),
        (
            ("--param", "size=1", "--param", "size=2"),
            "--param size given twice: list its values once",
        ),
    ],
)
def test_a_sweep_the_benches_refuse_is_one_line_and_measures_nothing(  # type: ignore[no-untyped-def]
    cli, repo, tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    g, (c0, _) = repo
    out = tmp_path / "r"
    base = ("--repo", str(g.path), "--results", str(out), "--benches", "benches", c0)
    one_error_line(cli("run", "--json", *base, *args), expected)
    assert not out.exists() or find_runs(out) == []  # nothing recorded


def test_every_measuring_command_checks_the_sweep(cli, repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, (c0, c1) = repo
    where = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--benches", "benches")
    where += ("--json",)  # no progress lines before the error
    unknown = (
        "--param nope: no selected bench declares a parameter 'nope' "
        "(declared: impl, on, ratio, size)"
    )
    one_error_line(cli("check", c0, c1, *where, "--param", "nope=1"), unknown)
    one_error_line(
        cli("bisect", c0, c1, *where, "--case", "sweep.plain", "--param", "nope=1"),
        "--param nope: no selected bench declares a parameter 'nope' (declared: none)",
    )
    one_error_line(cli("compare", c0, c1, *where, "--measure", "--param", "nope=1"), unknown)
    one_error_line(
        cli("compare", c0, c1, "--repo", str(g.path), "--param", "size=1"),
        "--param sweeps what is measured: give it with --measure",
    )
    one_error_line(
        cli("enqueue", "--repo", str(g.path), c0, "--param", "size"),
        "--param 'size': expected NAME=V1,V2,... (e.g. --param batch=1,4)",
    )
    assert not (tmp_path / "r").exists() or find_runs(tmp_path / "r") == []


def test_check_compares_the_swept_cases(cli, repo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, (c0, c1) = repo
    where = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--benches", "benches")
    outcome = cli(
        "check",
        c0,
        c1,
        *where,
        "--filter",
        "grid",
        "--param",
        "size=3",
        "--processes",
        "2",
        "--rounds",
        "2",
        "--json",
    )
    assert outcome.code == 1, outcome.err
    report = json.loads(outcome.out)
    assert sorted((r["case"], r["verdict"]) for r in report["rows"] if r["metric"] == "time") == [
        ("sweep.grid[impl=a,size=3]", "regressed"),
        ("sweep.grid[impl=b,size=3]", "regressed"),
    ]
    assert sorted((r["case"], r["metric"]) for r in report["confirmed"]) == [
        ("sweep.grid[impl=a,size=3]", "time"),
        ("sweep.grid[impl=b,size=3]", "time"),
    ]


def test_bisect_follows_a_swept_case(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, shas = sweep_repo(tmp_path / "repo", [0.050, 0.050, 0.055, 0.055])
    where = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--benches", "benches")
    case = "sweep.grid[impl=b,size=5]"  # exists only with the sweep
    found = cli(
        "bisect",
        shas[0],
        shas[-1],
        *where,
        "--case",
        case,
        "--param",
        "size=5",
        "--param",
        "impl=b",
        "--processes",
        "2",
        "--json",
    )
    assert found.code == 0, found.err
    report = json.loads(found.out)
    assert (report["case"], report["first_bad"]) == (case, shas[2])
    assert report["good_value"] == pytest.approx(0.25) and report["bad_value"] == pytest.approx(
        0.275
    )


def test_a_swept_case_is_one_case_in_postgresql(cli, db_env: str, engine: Engine, repo) -> None:  # type: ignore[no-untyped-def]
    g, (c0, _) = repo
    base = ("--repo", str(g.path), "--benches", "benches", c0, "--filter", "grid")
    for _ in range(2):
        assert cli("run", *base, "--param", "size=3", "--force").code == 0
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT k.id, k.label, k.params, count(*) FROM results r "
                "JOIN cases k ON k.id = r.case_id GROUP BY k.id ORDER BY k.label"
            )
        ).all()
        selections = (
            conn.execute(text("SELECT environment->'selection'->'params' FROM runs"))
            .scalars()
            .all()
        )
    assert [(label, params, n) for _, label, params, n in rows] == [
        ("sweep.grid[impl=a,size=3]", {"impl": "a", "size": 3}, 2),
        ("sweep.grid[impl=b,size=3]", {"impl": "b", "size": 3}, 2),
    ]
    assert selections == [{"size": ["3"]}, {"size": ["3"]}]


def test_enqueued_jobs_carry_their_sweep_to_the_worker(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, repo, tmp_path: Path
) -> None:
    g, (c0, _) = repo
    args = ("enqueue", "--repo", str(g.path), "--benches", "benches", "--filter", "grid", c0)
    assert cli(*args, "--param", "size=3", "--param", "impl=z").code == 0
    again = cli(*args, "--param", "impl=z", "--param", "size=3")  # the same work
    assert again.out.endswith("0 jobs enqueued, 1 already queued: " + str(g.path.resolve()) + "\n")
    assert cli(*args, "--param", "size=4").code == 0  # another sweep: another job
    assert cli(*args).code == 0  # and none
    with engine.connect() as conn:
        params = conn.execute(text("SELECT params FROM jobs ORDER BY id")).scalars().all()
    assert params == [{"size": ["3"], "impl": ["z"]}, {"size": ["4"]}, None]
    options = FleetOptions(cache=tmp_path / "cache", drain=True, poll_s=0.05)
    tally = FleetWorker(engine, options, fingerprint=lambda: f.machine(gpu=None)).run()
    assert (tally.done, tally.errored) == (3, 0)
    with engine.connect() as conn:
        recorded = conn.execute(
            text(
                "SELECT dense_rank() OVER (ORDER BY j.id), k.label FROM jobs j "
                "JOIN results r ON r.run_id = j.run_id JOIN cases k ON k.id = r.case_id "
                "ORDER BY j.id, k.label"
            )
        ).all()
    assert [tuple(r) for r in recorded] == [
        (1, "sweep.grid[impl=z,size=3]"),
        (2, "sweep.grid[impl=a,size=4]"),
        (2, "sweep.grid[impl=b,size=4]"),
        (3, "sweep.grid[impl=a,size=1]"),
        (3, "sweep.grid[impl=a,size=2]"),
        (3, "sweep.grid[impl=b,size=1]"),
        (3, "sweep.grid[impl=b,size=2]"),
    ]
