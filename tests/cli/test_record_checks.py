"""Values that are not measurements, reported by real bench code through `commitbench
run` into the real PostgreSQL: each fails its own case with the reason, the rest of the
module and the run go on (issue 12, item 3). Import refuses the same values with the
same words (tests/cli/test_import_faults.py); the rules are model/checks.py."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from tests.gitrepo import GitBuilder

NOT_MEASURED = """\
import math

import commitbench as cb


@cb.bench
def nan(ctx):
    ctx.record("x", float("nan"), unit="s")


@cb.bench
def inf_sample(ctx):
    ctx.record("x", [1.0, math.inf, 2.0], unit="s")


@cb.bench
def nan_property(ctx):
    ctx.record("x", 1.0, unit="s", ratio=float("nan"))


@cb.bench
def nan_note(ctx):
    ctx.note(size=float("nan"))
    ctx.record("x", 1.0, unit="s")


@cb.bench
def fine(ctx):
    ctx.record("x", [1.0, 2.0, 3.0], unit="s")
"""

RESULTS = text(
    "SELECT c.label, r.status, r.error FROM results r JOIN cases c ON c.id = r.case_id "
    "ORDER BY r.id"
)


def test_a_bench_reporting_nan_fails_its_case_not_the_run(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, tmp_path: Path
) -> None:
    g = GitBuilder(tmp_path / "repo")
    g.commit("benches", {"benches/bench_nan.py": NOT_MEASURED})
    outcome = cli("run", "--repo", str(g.path), "--benches", "benches")
    assert outcome.code == 1, outcome.text  # failed cases, a run that went through
    assert "Traceback" not in outcome.err
    with engine.connect() as conn:
        rows = conn.execute(RESULTS).all()
        run_status = conn.execute(text("SELECT status FROM runs")).scalar_one()
    assert run_status == "failed"
    assert [(label, status) for label, status, _ in rows] == [
        ("bench_nan.nan", "failed"),
        ("bench_nan.inf_sample", "failed"),
        ("bench_nan.nan_property", "failed"),
        ("bench_nan.nan_note", "failed"),
        ("bench_nan.fine", "ok"),
    ]
    last_lines = [(error or "").rstrip("\n").rsplit("\n", 1)[-1] for _, _, error in rows[:4]]
    assert last_lines == [
        "commitbench.model.checks.RecordError: metric x: sample 1 is nan, not a measurement",
        "commitbench.model.checks.RecordError: metric x: sample 2 is inf, not a measurement",
        "commitbench.model.checks.RecordError: metric x: properties is nan, not a measurement",
        "commitbench.model.checks.RecordError: bench_nan.nan_note: note size is nan, not a "
        "measurement",
    ]
