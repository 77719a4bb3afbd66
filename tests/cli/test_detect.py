"""detect and regressions on seeded histories in PostgreSQL and CSV."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, text

from commitbench.store.csv import CsvStore
from commitbench.store.sql import SqlStore
from tests import factories as f

CASE = "matmul.matmul[shape=4k]"


def test_detect_records_a_regression_once(cli, db_env: str, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    shas = f.synthetic_history(SqlStore(engine), [1.0] * 30 + [1.10] * 30)
    first = cli("detect", "--json")
    assert first.code == 1
    (cp,) = json.loads(first.out)["change_points"]
    assert (cp["kind"], cp["case"], cp["metric"], cp["sha"], cp["branch"]) == (
        "regression",
        CASE,
        "time",
        shas[30],
        "main",
    )
    assert 9.0 < cp["change_pct"] < 11.0
    again = cli("detect", "--json")
    assert json.loads(again.out)["change_points"][0]["id"] == cp["id"]
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.state, c.sha, b.sha FROM regressions r"
                " JOIN commits c ON c.id = r.commit_id"
                " JOIN commits b ON b.id = r.baseline_commit_id"
            )
        ).all()
    assert rows == [("open", shas[30], shas[29])]

    listed = cli("regressions", "--json")
    assert [(r["id"], r["case"], r["state"]) for r in json.loads(listed.out)] == [
        (cp["id"], CASE, "open")
    ]
    assert cli("regressions", "ack", str(cp["id"])).code == 0
    assert json.loads(cli("regressions", "--json").out) == []
    cli("detect", "--json")  # re-detection keeps what a person decided
    (row,) = json.loads(cli("regressions", "--state", "all", "--json").out)
    assert row["state"] == "acknowledged"
    missing = cli("regressions", "ack", "999999")
    assert (missing.code, missing.err) == (2, "commitbench: error: no regression with id 999999\n")


def test_an_undone_step_is_fixed(cli, db_env: str, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    shas = f.synthetic_history(SqlStore(engine), [1.0] * 30 + [1.2] * 30 + [1.0] * 30)
    result = cli("detect", "--json")
    assert result.code == 0  # nothing open: the regression was undone
    kinds = [(c["kind"], c["sha"], c["fixed_by"]) for c in json.loads(result.out)["change_points"]]
    assert kinds == [("regression", shas[30], shas[60]), ("improvement", shas[60], None)]
    (row,) = json.loads(cli("regressions", "--state", "fixed", "--json").out)
    assert row["sha"] == shas[30]


def test_detect_on_csv_reports_without_writing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = tmp_path / "results"
    shas = f.synthetic_history(CsvStore(results), [1.0] * 30 + [0.8] * 30)
    outcome = cli("detect", "--results", str(results), "--json")
    assert outcome.code == 0
    (cp,) = json.loads(outcome.out)["change_points"]
    assert (cp["kind"], cp["sha"], cp["id"]) == ("improvement", shas[30], None)


def test_a_history_measured_under_changing_load_reports_contention(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Commits 20-39 ran while the machine was busy (their workers waited: wall over CPU
    time 1.4); their times are 30% higher with the same code. No regression."""
    results = tmp_path / "results"
    levels = [1.0] * 20 + [1.3] * 20 + [1.0] * 20
    busy = [1.4 if 20 <= i < 40 else 1.0 for i in range(60)]
    shas = f.synthetic_history(CsvStore(results), levels, wall_per_cpu=busy)
    outcome = cli("detect", "--results", str(results), "--json")
    assert outcome.code == 0, outcome.err
    found = json.loads(outcome.out)["change_points"]
    assert [(c["kind"], c["sha"], c["contended"]) for c in found] == [
        ("contention", shas[20], 20),
        ("contention", shas[40], 20),
    ]
    table = cli("detect", "--results", str(results))
    assert "20 commits under contention: not a regression" in table.out


def test_regressions_need_a_database(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("COMMITBENCH_DB", raising=False)
    outcome = cli("regressions")
    assert (outcome.code, outcome.err) == (
        2,
        "commitbench: error: no database: pass --db URL or set COMMITBENCH_DB\n",
    )
