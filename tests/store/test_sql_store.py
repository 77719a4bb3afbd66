"""MetricsRecorder into PostgreSQL: exact round trips, idempotency, atomic units."""

from __future__ import annotations

import dataclasses
import uuid

import psycopg
import pytest
from sqlalchemy import Engine, text

from commitbench.model.records import RunData
from commitbench.runner.recorder import MetricsRecorder
from commitbench.store import sqlcopy
from commitbench.store.sql import SqlStore
from tests import factories as f


def record(engine: Engine, header=None, results=None, run_samples=()) -> tuple:  # type: ignore[no-untyped-def]
    header = header or f.header()
    results = (
        results
        if results is not None
        else [f.result(i=0), f.result(i=1), f.result(i=2, status="oom")]
    )
    with MetricsRecorder(SqlStore(engine), header) as rec:
        for r in results:
            rec.add(r)
            rec.flush()
        rec.add_run_samples(run_samples)
    return header, results


def test_run_round_trips_with_exact_values(engine: Engine) -> None:
    run_samples = f.samples(4, gpus=1)
    header, results = record(engine, run_samples=run_samples)
    store = SqlStore(engine)

    data = store.load_run(header.run.id)

    assert data.header == header
    assert data.results == tuple(results)
    assert data.end is not None
    assert data.end.status == "ok"  # one case ran out of memory: a finding, not a failure
    assert data.end.device_samples == run_samples
    assert store.counts() == {
        "machines": 1,
        "commits": 1,
        "runs": 1,
        "cases": 3,
        "results": 3,
        "metrics": 6,
        "device_samples": 3 * 3 * 2 + 4,
    }
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT m.samples, m.n, m.median, m.ci_low, m.ci_high, m.properties "
                "FROM metrics m JOIN results r ON r.id = m.result_id "
                "JOIN cases c ON c.id = r.case_id "
                "WHERE m.name = 'time' AND c.label = :label"
            ),
            {"label": "matmul.matmul[i=1,impl=fp16,shape=4k]"},
        ).one()
    assert row.samples == [0.002 + 1e-6 * k for k in range(10)]
    assert row.n == 10
    assert row.median == (0.002 + 4e-6) + ((0.002 + 5e-6) - (0.002 + 4e-6)) * 0.5
    assert (row.ci_low, row.ci_high) == (0.002 + 1e-6, 0.002 + 8e-6)  # ranks 2 and 9 of 10
    assert row.properties == {"warmup": 3, "l2_flush": True}


def test_recording_the_same_run_twice_adds_nothing(engine: Engine) -> None:
    header, results = record(engine)
    before = SqlStore(engine).counts()

    record(engine, header=header, results=results, run_samples=f.samples(2))

    assert SqlStore(engine).counts() == before


def test_runs_share_commit_machine_and_cases(engine: Engine) -> None:
    header, _ = record(engine)
    record(engine, header=f.again(header))
    counts = SqlStore(engine).counts()
    assert (counts["runs"], counts["commits"], counts["machines"], counts["cases"]) == (2, 1, 1, 3)
    assert counts["results"] == 6


def test_a_unit_is_one_transaction(engine: Engine) -> None:
    good = f.result(i=0)
    bad = f.result(i=1)
    # Forge a value that bypassed validation: the database check rejects it, and
    # nothing of the unit (not even the valid result before it) may remain.
    broken_metric = dataclasses.replace(bad.metrics[0])
    object.__setattr__(broken_metric, "stddev", -1.0)
    object.__setattr__(bad, "metrics", (broken_metric,))
    store = SqlStore(engine)
    header = f.header()
    store.open_run(header)

    with pytest.raises(psycopg.errors.CheckViolation):
        store.write_unit(header.run.id, [good, bad])

    assert store.counts()["results"] == 0
    assert store.counts()["device_samples"] == 0


def test_unknown_run_is_a_clear_error(engine: Engine) -> None:
    from commitbench.errors import CommitbenchError

    missing = uuid.uuid4()
    with pytest.raises(CommitbenchError, match=f"no run {missing}"):
        SqlStore(engine).load_run(missing)


def test_finish_is_written_once(engine: Engine) -> None:
    header, _ = record(engine, run_samples=f.samples(1, gpus=1))
    store = SqlStore(engine)
    first: RunData = store.load_run(header.run.id)
    assert first.end is not None
    later = dataclasses.replace(first.end, status="ok", device_samples=f.samples(5))
    assert store.finish_run(header.run.id, later) is False
    assert store.load_run(header.run.id).end == first.end


def test_samples_must_refer_to_a_run_and_a_result_of_it(engine: Engine) -> None:
    header, _ = record(engine)
    other = f.header()
    SqlStore(engine).open_run(other)
    with engine.connect() as conn:
        result_id = conn.execute(text("SELECT min(id) FROM results")).scalar_one()
    cases = [
        (uuid.uuid4(), None, "refers to no run"),
        (header.run.id, 10**9, "refers to no result of its run"),
        (other.run.id, result_id, "refers to no result of its run"),  # a result of another run
    ]
    for run_id, rid, message in cases:
        with (
            engine.begin() as conn,
            pytest.raises(psycopg.errors.ForeignKeyViolation, match=message),
        ):
            sqlcopy.copy_samples(
                conn.connection.driver_connection, [(run_id, rid, f.samples(1)[0])]
            )  # type: ignore[arg-type]


def test_deleting_runs_and_results_deletes_their_samples(engine: Engine) -> None:
    header, _ = record(engine, run_samples=f.samples(2))
    kept, _ = record(engine, header=f.again(header))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM results WHERE id = (SELECT min(id) FROM results)"))
    assert SqlStore(engine).counts()["device_samples"] == (3 * 3 * 2 + 4) + 3 * 3 * 2 - 6
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": header.run.id})
    assert SqlStore(engine).counts()["device_samples"] == 3 * 3 * 2
    with engine.connect() as conn:
        left = conn.execute(text("SELECT DISTINCT run_id FROM device_samples")).scalars().all()
    assert left == [kept.run.id]


def test_recorded_cases_by_commit_machine_and_profile(engine: Engine) -> None:
    from commitbench.model.records import RecordedKey

    header, _ = record(engine)
    other = f.header(gpu=None)
    record(engine, header=other, results=[f.result(i=5)])
    store = SqlStore(engine)
    assert store.recorded(RecordedKey.of(header)) == {
        "matmul.matmul[i=0,impl=fp16,shape=4k]": "ok",
        "matmul.matmul[i=1,impl=fp16,shape=4k]": "ok",
        "matmul.matmul[i=2,impl=fp16,shape=4k]": "oom",
    }
    assert store.recorded(RecordedKey.of(other)) == {"matmul.matmul[i=5,impl=fp16,shape=4k]": "ok"}
    assert store.recorded(RecordedKey.of(f.header(sha=f.SHA_B))) == {}
    # The latest run's status wins, whatever order the runs were written in.
    for minutes, status in ((2, "crashed"), (1, "ok")):
        later = f.again(header, minutes)
        record(engine, header=later, results=[f.result(i=1, status=status)])
    assert store.recorded(RecordedKey.of(header))["matmul.matmul[i=1,impl=fp16,shape=4k]"] == (
        "crashed"
    )


def with_processes(r):  # type: ignore[no-untyped-def]
    """The result with its time samples split over two worker processes."""
    time = r.metrics[0]
    split = dataclasses.replace(time, processes=tuple(k // 5 for k in range(time.n)))
    return dataclasses.replace(r, metrics=(split, *r.metrics[1:]))


def test_each_sample_keeps_its_process(engine: Engine) -> None:
    from commitbench.model.points import PointFilter

    results = [with_processes(f.result(i=0)), f.result(i=1)]
    header, _ = record(engine, results=results)
    store = SqlStore(engine)
    assert store.load_run(header.run.id).results == tuple(results)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT processes FROM metrics WHERE name = 'time' ORDER BY id")
        ).scalars()
        assert list(stored) == [[0] * 5 + [1] * 5, None]
    points = [p for p in store.points(PointFilter()) if p.metric == "time"]
    assert [p.processes for p in points] == [(0,) * 5 + (1,) * 5, None]
    assert [len(p.by_process()) for p in points] == [2, 1]
    with engine.begin() as conn, pytest.raises(Exception, match="processes_match_n"):
        conn.execute(text("UPDATE metrics SET processes = '{0}' WHERE name = 'time'"))
