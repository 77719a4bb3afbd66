"""The job queue on the real PostgreSQL: idempotent enqueue, SKIP LOCKED claims, leases,
fencing, parking, follow mode, and the fenced job store."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from commitbench.errors import ConfigError
from commitbench.fleet import queue, status
from commitbench.fleet.enqueue import follow, open_source
from commitbench.fleet.kinds import MachineKind
from commitbench.fleet.queue import JobSpec, LeaseLost
from commitbench.fleet.store import JobStore
from commitbench.fleet.worker import FleetOptions, FleetWorker
from commitbench.store.sql import SqlStore
from commitbench.store.tables import Job
from tests import factories as f
from tests.gitrepo import bench_repo

CPU = f.machine(gpu=None)
H100 = f.machine()
SPEC = JobSpec(repository="https://example.com/acme/model.git")


def shas(n: int) -> list[str]:
    return [f"{i:040x}" for i in range(1, n + 1)]


def test_enqueue_is_idempotent(engine: Engine) -> None:
    first = queue.enqueue(engine, SPEC, shas(3))
    assert [j.new for j in first] == [True] * 3
    again = queue.enqueue(engine, SPEC, shas(4))
    assert [(j.id, j.new) for j in again[:3]] == [(j.id, False) for j in first]
    assert again[3].new
    # Other work on the same commits is other jobs; NULLs compare equal in the key.
    other = queue.enqueue(engine, replace(SPEC, kind=MachineKind("H100", 1)), shas(1))
    assert other[0].new
    assert status.state_counts(engine)["pending"] == 5


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("any", MachineKind(None, 0)),
        ("gpu", MachineKind(None, 1)),
        ("gpux2", MachineKind(None, 2)),
        ("H100", MachineKind("H100", 1)),
        ("H100x8", MachineKind("H100", 8)),
    ],
)
def test_machine_kinds(text: str, kind: MachineKind) -> None:
    assert MachineKind.parse(text) == kind
    assert MachineKind.parse(str(kind)) == kind


@pytest.mark.parametrize("text", ["", "H100 80GB", "A100;x2"])
def test_a_bad_machine_kind_is_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        MachineKind.parse(text)


def test_claims_match_the_machine(engine: Engine) -> None:
    queue.enqueue(engine, replace(SPEC, kind=MachineKind("h100", 1)), shas(1))
    queue.enqueue(engine, replace(SPEC, kind=MachineKind("A100", 1)), shas(1))
    queue.enqueue(engine, replace(SPEC, kind=MachineKind(None, 2)), shas(1))
    assert queue.claim(engine, "cpu", CPU, 60) is None
    assert queue.left_for(engine, CPU) == 0
    got = queue.claim(engine, "h100", H100, 60)
    assert got is not None and got.spec.kind == MachineKind("h100", 1)
    # Only its own job (running) is left for it: neither the A100 nor the x2 one fits.
    assert queue.left_for(engine, H100) == 1
    assert queue.claim(engine, "h100", H100, 60) is None  # A100 and x2 are not for it


def test_concurrent_claims_take_each_job_once(engine: Engine) -> None:
    queue.enqueue(engine, SPEC, shas(40))
    taken: list[int] = []
    lock = threading.Lock()

    def drain(owner: str) -> None:
        while (job := queue.claim(engine, owner, CPU, 60)) is not None:
            with lock:
                taken.append(job.id)
            assert queue.complete(engine, job, failed=None, run_id=None)

    threads = [threading.Thread(target=drain, args=(f"r{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(set(taken)) and len(taken) == 40
    assert status.state_counts(engine)["done"] == 40


def expire(engine: Engine, job_id: int) -> None:
    """The lease runs out now (instead of sleeping through it)."""
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=Job.started_at))


def test_an_expired_lease_is_reclaimed_and_the_old_holder_is_fenced_off(engine: Engine) -> None:
    queue.enqueue(engine, SPEC, shas(1))
    old = queue.claim(engine, "old", CPU, 60)
    assert old is not None and queue.heartbeat(engine, old, 60)
    assert queue.claim(engine, "new", CPU, 60) is None  # held
    expire(engine, old.id)
    new = queue.claim(engine, "new", CPU, 60)
    assert new is not None and (new.id, new.attempt) == (old.id, 2)
    assert not queue.heartbeat(engine, old, 60)
    assert not queue.complete(engine, old, failed=None, run_id=None)
    with engine.begin() as conn, pytest.raises(LeaseLost):
        queue.check_lease(conn, old)
    (row,) = status.list_jobs(engine)
    assert (row.state, row.runner, row.error) == ("running", "new", "lease of old expired")
    assert queue.complete(engine, new, failed=None, run_id=None)


def test_a_job_is_parked_after_its_attempts(engine: Engine) -> None:
    queue.enqueue(engine, replace(SPEC, max_attempts=3), shas(1))
    for attempt in (1, 2):
        job = queue.claim(engine, "r", CPU, 60)
        assert job is not None and job.attempt == attempt
        assert queue.fail_attempt(engine, job, "RuntimeError: boom", retry_in_s=0)
    # The third runner dies: its expired lease parks the job at the next claim.
    job = queue.claim(engine, "dies", CPU, 60)
    assert job is not None and job.attempt == 3
    expire(engine, job.id)
    assert queue.claim(engine, "r", CPU, 60) is None
    (row,) = status.list_jobs(engine, ["parked"])
    assert row.error == "lease of dies expired on attempt 3 of 3"
    assert queue.left_for(engine, CPU) == 0


def test_a_failed_attempt_waits_before_the_retry_and_release_counts_none(engine: Engine) -> None:
    queue.enqueue(engine, SPEC, shas(1))
    job = queue.claim(engine, "r", CPU, 60)
    assert job is not None
    assert queue.fail_attempt(engine, job, "boom", retry_in_s=3600)
    assert queue.claim(engine, "r", CPU, 60) is None
    assert queue.left_for(engine, CPU) == 1  # still to do: --drain waits for it
    (row,) = status.list_jobs(engine, ["pending"])
    assert row.error == "attempt 1 of 3: boom"
    with engine.begin() as conn:
        conn.execute(update(Job).values(not_before=Job.created_at))
    job = queue.claim(engine, "r", CPU, 60)
    assert job is not None and job.attempt == 2
    assert queue.release(engine, job)
    again = queue.claim(engine, "r", CPU, 60)
    assert again is not None and again.attempt == 2


def test_follow_enqueues_each_new_commit_once(engine: Engine, tmp_path: Path) -> None:
    g, _ = bench_repo(tmp_path / "repo", commits=3)
    source = open_source(str(g.path), tmp_path / "cache")
    spec = replace(SPEC, branch="main", trigger="cron")
    first = follow(engine, source, spec)
    assert [j.sha for j in first] == [g.head()]
    assert follow(engine, source, spec) == []
    new = [g.commit("four"), g.commit("five")]
    assert [(j.sha, j.new) for j in follow(engine, source, spec)] == [(s, True) for s in new]
    assert follow(engine, source, spec) == []
    # Another machine kind follows the same branch on its own.
    h100 = follow(engine, source, replace(spec, kind=MachineKind("H100", 1)))
    assert [j.sha for j in h100] == [new[-1]]
    assert status.state_counts(engine)["pending"] == 4


def test_job_store_keeps_one_result_per_case_and_refuses_a_lost_lease(engine: Engine) -> None:
    """Two jobs whose selections overlap run the same case at once on identical
    machines: the second unit of that case is dropped. A reclaimed job's old runner
    cannot write at all."""
    queue.enqueue(engine, SPEC, shas(1))
    queue.enqueue(engine, replace(SPEC, filter="i=0"), shas(1))
    a = queue.claim(engine, "a", CPU, 60)
    b = queue.claim(engine, "b", CPU, 60)
    assert a is not None and b is not None
    store_a, store_b = JobStore(engine, a), JobStore(engine, b)
    run_a, run_b = f.header(uuid.uuid4()), f.header(uuid.uuid4())
    store_a.open_run(run_a)
    store_b.open_run(run_b)
    assert store_b.write_unit(run_b.run.id, [f.result(i=0)]) == 1
    assert store_a.write_unit(run_a.run.id, [f.result(i=0), f.result(i=1)]) == 1
    assert store_a.take_recorded_elsewhere(run_a.run.id) == [f.result(i=0).case.label]
    assert store_a.take_recorded_elsewhere(run_a.run.id) == []
    # A retried unit (the commit's reply was lost) is absorbed by the (run, case) key.
    assert store_a.write_unit(run_a.run.id, [f.result(i=1)]) == 0
    assert SqlStore(engine).counts()["results"] == 2

    expire(engine, a.id)
    assert queue.claim(engine, "c", CPU, 60) is not None
    with pytest.raises(LeaseLost):
        store_a.write_unit(run_a.run.id, [f.result(i=2)])
    assert SqlStore(engine).counts()["results"] == 2


def test_a_job_that_keeps_erroring_is_parked_with_its_error(engine: Engine, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-repo")
    queue.enqueue(engine, replace(SPEC, repository=missing, max_attempts=2), shas(1))
    options = FleetOptions(cache=tmp_path / "cache", drain=True, poll_s=0.05, retry_in_s=0)
    started = time.monotonic()
    tally = FleetWorker(engine, options, fingerprint=lambda: CPU).run()
    assert time.monotonic() - started < 30
    assert (tally.errored, tally.done) == (2, 0)
    (row,) = status.list_jobs(engine)
    assert (row.state, row.attempts) == ("parked", 2)
    assert row.error is not None and row.error.startswith("attempt 2 of 2: CommitbenchError: git")
    with engine.connect() as conn:
        assert conn.execute(select(Job.finished_at)).scalar_one() is not None
