"""Real `commitbench worker` processes against one PostgreSQL: many workers, a worker
killed mid-job, the database's connections terminated, benches that hang, crash and
exhaust memory, and a graceful stop."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from commitbench.fleet import queue, status
from commitbench.fleet.queue import JobSpec
from commitbench.fleet.repos import RepoCache
from commitbench.runner.vcs import Repository
from commitbench.store.sql import SqlStore
from tests.conftest import DatabaseOutage
from tests.fleet.conftest import DUPLICATES, Fleet, tiny_repo, wait_for
from tests.gitrepo import CASES, SLOW_CASES, bench_repo

pytestmark = pytest.mark.slow


def wait_for_text(
    fleet: Fleet, proc: subprocess.Popen[str], text: str, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while text not in fleet.log(proc):
        assert time.monotonic() < deadline, f"no {text!r} in the worker's log"
        time.sleep(0.02)


def spec(repo: Path, **kw: object) -> JobSpec:
    return JobSpec(repository=str(repo), benches="benches", **kw)  # type: ignore[arg-type]


def test_four_workers_drain_forty_jobs_once_each(
    fleet: Fleet, engine: Engine, tmp_path: Path
) -> None:
    shas = tiny_repo(tmp_path / "repo", commits=40)
    queue.enqueue(engine, spec(tmp_path / "repo"), shas)
    started = time.monotonic()
    procs = [fleet.start("--drain", "--quiet") for _ in range(4)]
    tallies = [fleet.wait(p) for p in procs]
    elapsed = time.monotonic() - started
    assert sum(t["done"] for t in tallies) == 40
    assert [t["errored"] + t["lost"] + t["given_back"] for t in tallies] == [0] * 4
    rows = status.list_jobs(engine, limit=100)
    assert {(r.state, r.attempts) for r in rows} == {("done", 1)}
    with engine.connect() as conn:
        assert conn.execute(DUPLICATES).all() == []
        recorded = conn.execute(
            text(
                "SELECT count(*) FROM jobs j JOIN runs u ON u.id = j.run_id "
                "JOIN commits c ON c.id = u.commit_id AND c.sha = j.sha"
            )
        ).scalar_one()
    assert recorded == 40  # each job's run is of its own commit
    assert SqlStore(engine).counts()["results"] == 40
    # Scaling is measured by perf/fleet.py; here it is only reported.
    print(f"4 workers, 40 jobs: {elapsed:.1f} s; jobs per worker {[t['done'] for t in tallies]}")


def test_a_killed_workers_job_is_reclaimed_without_duplicate_results(
    fleet: Fleet, engine: Engine, tmp_path: Path
) -> None:
    g, shas = bench_repo(tmp_path / "repo", commits=1, slow=True)
    queue.enqueue(engine, spec(g.path), shas)
    first = fleet.start("--lease", "2")
    # bench_model's three cases are recorded, bench_slow's wait at the gate.
    wait_for(engine, "SELECT count(*) FROM results", 3)
    first.send_signal(signal.SIGKILL)
    first.wait()
    fleet.open_gate()
    second = fleet.start("--drain", "--lease", "2")
    tally = fleet.wait(second)
    assert tally["done"] == 1
    (row,) = status.list_jobs(engine)
    assert (row.state, row.attempts, row.runner) == ("done", 2, "w1")
    with engine.connect() as conn:
        assert conn.execute(DUPLICATES).all() == []
        labels = conn.execute(
            text(
                "SELECT k.label, r.run_id = j.run_id FROM results r "
                "JOIN cases k ON k.id = r.case_id CROSS JOIN jobs j ORDER BY k.label"
            )
        ).all()
    # The dead worker's cases stay in its run; the new run has only the rest.
    assert labels == [(c, False) for c in CASES] + [(c, True) for c in SLOW_CASES]


def test_workers_reconnect_after_the_database_drops_them(
    fleet: Fleet, engine: Engine, outage: DatabaseOutage, tmp_path: Path
) -> None:
    g, shas = bench_repo(tmp_path / "repo", commits=4, slow=True)
    queue.enqueue(engine, spec(g.path), shas)
    procs = [fleet.start("--drain", "--lease", "30") for _ in range(2)]
    # Each worker has recorded its job's bench_model cases; bench_slow waits at the gate.
    wait_for(engine, "SELECT count(*) FROM results", 2 * len(CASES))
    outage.begin()  # connections terminated, no new ones until outage.end()
    fleet.open_gate()
    # The outage lasts until both workers have lost the database writing bench_slow's
    # results (not a fixed time a loaded machine might not fill).
    for proc in procs:
        wait_for_text(fleet, proc, "database lost during write results")
    outage.end()
    tallies = [fleet.wait(p) for p in procs]
    assert sum(t["done"] for t in tallies) == 4
    assert [t["errored"] + t["lost"] + t["given_back"] for t in tallies] == [0, 0]
    assert {r.state for r in status.list_jobs(engine)} == {"done"}
    with engine.connect() as conn:
        assert conn.execute(DUPLICATES).all() == []
    assert SqlStore(engine).counts()["results"] == 4 * (len(CASES) + len(SLOW_CASES))


BAD = """\
import ctypes
import resource
import time

import commitbench as cb


@cb.bench
def hangs(ctx):
    time.sleep(60)


@cb.bench
def segfaults(ctx):
    ctypes.string_at(0)


@cb.bench
def hoards(ctx):
    # Bound the address space so this can never hurt the machine.
    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm * 1024 + 64 * 2**20, resource.RLIM_INFINITY))
    hoard = []
    while True:
        hoard.append(bytearray(16 * 2**20))
"""


def test_hanging_crashing_and_hoarding_benches_are_results_and_the_worker_goes_on(
    fleet: Fleet, engine: Engine, tmp_path: Path
) -> None:
    shas = tiny_repo(tmp_path / "repo", commits=2, files={"benches/bench_bad.py": BAD})
    queue.enqueue(engine, spec(tmp_path / "repo", filter="bench_bad", timeout_s=3), shas[:1])
    queue.enqueue(engine, spec(tmp_path / "repo", filter="tiny"), shas[1:])
    tally = fleet.wait(fleet.start("--drain"), code=1)  # failures found
    assert (tally["failed"], tally["done"]) == (1, 1)
    bad, good = sorted(status.list_jobs(engine), key=lambda r: r.id)
    assert (bad.state, good.state) == ("failed", "done")
    assert bad.error is not None and bad.error.startswith("2 cases broke:")
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                text("SELECT k.label, r.status FROM results r JOIN cases k ON k.id = r.case_id")
            ).all()
        )
    assert statuses == {
        "bench_bad.hangs": "timeout",
        "bench_bad.segfaults": "crashed",
        "bench_bad.hoards": "oom",
        "bench_tiny.tiny": "ok",
    }


def test_sigterm_finishes_the_current_job_then_stops(
    fleet: Fleet, engine: Engine, tmp_path: Path
) -> None:
    g, shas = bench_repo(tmp_path / "repo", commits=2, slow=True)
    queue.enqueue(engine, spec(g.path), shas)
    proc = fleet.start()
    wait_for(engine, "SELECT count(*) FROM results", 3)  # bench_slow waits at the gate
    proc.send_signal(signal.SIGTERM)
    wait_for_text(fleet, proc, "stopping after the current job")
    fleet.open_gate()
    tally = fleet.wait(proc)
    assert tally["done"] == 1
    assert "stopping after the current job" in fleet.log(proc)
    assert status.state_counts(engine) == {
        "pending": 1,
        "running": 0,
        "done": 1,
        "failed": 0,
        "parked": 0,
    }


def test_a_second_sigterm_gives_the_job_back_now(
    fleet: Fleet, engine: Engine, tmp_path: Path
) -> None:
    g, shas = bench_repo(tmp_path / "repo", commits=1, slow=True)
    queue.enqueue(engine, spec(g.path), shas)
    proc = fleet.start()
    wait_for(engine, "SELECT count(*) FROM results", 3)  # bench_slow waits at the gate
    proc.send_signal(signal.SIGTERM)
    wait_for_text(fleet, proc, "stopping after the current job")
    proc.send_signal(signal.SIGTERM)
    tally = fleet.wait(proc, timeout=30)
    assert (tally["given_back"], tally["done"]) == (1, 0)
    (row,) = status.list_jobs(engine)
    assert (row.state, row.attempts) == ("pending", 0)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM runs")).scalar_one() == "interrupted"
    clone = Repository(RepoCache(fleet.folder / "cache").path_for(str(g.path)))
    assert clone.worktrees() == []  # the interrupted run removed its worktree
