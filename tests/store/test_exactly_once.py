"""One result per (commit, case, machine, profile) whatever writes it: the store's rule
for what another run recorded first (store/worklock.py), and `import` held to it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from commitbench.model.records import REMEASURE_FAILED, RunEnd, RunHeader
from commitbench.store.csv import CsvStore, find_runs
from commitbench.store.sql import SqlStore
from commitbench.store.transfer import import_runs
from tests import factories as f

LABELS = [f.result(i=i).case.label for i in range(3)]
PER_CASE = text(
    "SELECT k.label, count(*) FROM results r JOIN cases k ON k.id = r.case_id "
    "GROUP BY k.label ORDER BY k.label"
)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {label: n for label, n in conn.execute(PER_CASE)}


def _later(header: RunHeader, minutes: float, **environment: str) -> RunHeader:
    run = dataclasses.replace(
        header.run,
        id=f.again(header).run.id,
        started_at=header.run.started_at + timedelta(minutes=minutes),
        environment={**header.run.environment, **environment},
    )
    return dataclasses.replace(header, run=run)


def test_a_plain_run_drops_every_case_another_run_recorded(engine: Engine) -> None:
    store = SqlStore(engine)
    first, second = f.header(), _later(f.header(), 10)
    store.open_run(first)
    store.open_run(second)
    assert store.write_unit(first.run.id, [f.result(i=0)]) == 1
    assert store.write_unit(second.run.id, [f.result(i=0), f.result(i=1)]) == 1
    assert store.take_recorded_elsewhere(second.run.id) == [LABELS[0]]
    assert store.take_recorded_elsewhere(second.run.id) == []
    assert store.take_recorded_elsewhere(first.run.id) == []
    # The first run writing case 1 afterwards finds it taken in turn.
    assert store.write_unit(first.run.id, [f.result(i=1)]) == 0
    assert store.take_recorded_elsewhere(first.run.id) == [LABELS[1]]
    assert _counts(engine) == {LABELS[0]: 1, LABELS[1]: 1}


def test_a_forced_run_keeps_what_was_measured_before_it_started(engine: Engine) -> None:
    """f.result(i) was measured from T0 + i s for 1.25 + i s (cases 0, 1, 2 end at
    1.25, 3.25, 5.25 s). A forced run started at T0 + 4 s re-measures cases 0 and 1;
    case 2, still being measured by the other run when it started, is that run's."""
    store = SqlStore(engine)
    plain = f.header()
    store.open_run(plain)
    store.write_unit(plain.run.id, [f.result(i=i) for i in range(3)])
    forced = _later(plain, 4 / 60, remeasure="all")
    store.open_run(forced)
    assert store.write_unit(forced.run.id, [f.result(i=i) for i in range(3)]) == 2
    assert store.take_recorded_elsewhere(forced.run.id) == [LABELS[2]]
    assert _counts(engine) == {LABELS[0]: 2, LABELS[1]: 2, LABELS[2]: 1}


def test_a_retry_of_failures_records_only_over_a_failure(engine: Engine) -> None:
    store = SqlStore(engine)
    plain = f.header()
    store.open_run(plain)
    store.write_unit(plain.run.id, [f.result(i=0, status="crashed"), f.result(i=1)])
    retry = _later(plain, 10, remeasure=REMEASURE_FAILED)
    store.open_run(retry)
    assert store.write_unit(retry.run.id, [f.result(i=0), f.result(i=1)]) == 1
    assert store.take_recorded_elsewhere(retry.run.id) == [LABELS[1]]
    assert _counts(engine) == {LABELS[0]: 2, LABELS[1]: 1}


def test_import_drops_what_another_run_recorded(engine: Engine, tmp_path: Path) -> None:
    """Two spooled runs of the same work (two runners that lost the database at once):
    importing both keeps the first one's result per case."""
    a, b = f.header(), _later(f.header(), 1)
    csv = CsvStore(tmp_path / "spool")
    for header, cases in ((a, (0, 1)), (b, (1, 2))):
        csv.open_run(header)
        csv.write_unit(header.run.id, [f.result(i=i) for i in cases])
        csv.finish_run(header.run.id, RunEnd(header.run.started_at + timedelta(hours=1), "ok"))
    summary = import_runs(SqlStore(engine), tmp_path / "spool")
    assert (summary.runs, summary.results_seen, summary.results_added) == (2, 4, 3)
    assert _counts(engine) == {label: 1 for label in LABELS}
    with engine.connect() as conn:
        owner = conn.execute(
            text(
                "SELECT r.run_id FROM results r JOIN cases k ON k.id = r.case_id "
                "WHERE k.label = :label"
            ),
            {"label": LABELS[1]},
        ).scalar_one()
    first = find_runs(tmp_path / "spool")[0].name  # runs are imported in this order
    assert str(owner) == first


def test_all_in_one_transactions_run_one_at_a_time(engine: Engine) -> None:
    """An import holds the work lock of every run it writes until it commits; two such
    transactions taking them in different orders would deadlock, so the second waits
    for the first: while one is open, its lock cannot be taken."""
    probe = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:name, 0))")
    with SqlStore(engine).one_transaction(), engine.connect() as other:
        taken = other.execute(probe, {"name": "commitbench.one_transaction"}).scalar_one()
        other.rollback()
    assert taken is False
    with engine.connect() as other:
        assert other.execute(probe, {"name": "commitbench.one_transaction"}).scalar_one() is True
