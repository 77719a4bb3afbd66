"""Fleet queue throughput and claim latency for 1, 2, 4 and 8 workers.

Two measurements on a throwaway PostgreSQL database (created and dropped here):

- queue: N processes, each a loop of `queue.claim` then `queue.complete` with no work in
  between, on 400 jobs. Jobs per second is the queue's own capacity; the claim latency
  is the client-side time of the claim transaction (all claims pooled).
- workers: N runner processes (FleetWorker with --drain, what `commitbench worker` runs)
  on J jobs, one commit each, of a trivial bench (one case that records a constant):
  end to end, the way a fleet runs (claim, fetch check, worktree, bench process,
  recording, heartbeat). Each runner first takes one warm-up job, because a runner's
  first job per repository probes the workers' environment (imports torch: seconds,
  once); the timed phase starts when every runner is warm. Claim latencies are every
  runner's claims in the timed phase, pooled (the last, empty claim of each included).

Scaling is throughput(N) / throughput(1); efficiency is scaling / min(N, cores): the
target (issue 8) is efficiency >= 0.8 up to the machine's cores, and claim p95 <= 20 ms
at 8 workers.

    .venv/bin/python perf/fleet.py [--jobs 60] [--workers 1,2,4,8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from psycopg import sql
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from commitbench.fleet import queue
from commitbench.fleet.queue import JobSpec
from commitbench.fleet.worker import FleetOptions, FleetWorker, Tally
from commitbench.model.records import MachineInfo
from commitbench.store import engine as dbengine
from commitbench.store import migrate

ADMIN_URL = os.environ.get(
    "COMMITBENCH_TEST_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TINY = """\
import commitbench as cb


@cb.bench
def tiny(ctx):
    ctx.record("answer", 42, unit="count", better="higher")
"""
QUEUE_JOBS = 400
CPU = MachineInfo.from_facts(cpu_model="perf", gpu_count=0)
TABLES = ("jobs", "device_samples", "metrics", "results", "runs", "cases", "commits", "machines")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(repo: Path, commits: int) -> list[str]:
    (repo / "benches").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "perf")
    git(repo, "config", "user.email", "perf@example.com")
    (repo / "benches" / "bench_tiny.py").write_text(TINY)
    shas = []
    for i in range(commits):
        (repo / "README").write_text(f"commit {i}\n")
        git(repo, "add", ".")
        git(repo, "commit", "-qm", f"commit {i}")
        shas.append(git(repo, "rev-parse", "HEAD"))
    return shas


def empty(url: URL) -> None:
    eng = dbengine.make_engine(url)
    with eng.begin() as conn:
        raw = conn.connection.driver_connection
        raw.execute(  # type: ignore[union-attr]
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(map(sql.Identifier, TABLES))
            )
        )
    eng.dispose()


def pct(values: list[float], q: float) -> float:
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, int(q * len(ranked)))]


# -- queue only ---------------------------------------------------------------------------


def _client(url: str, owner: str, start: mp.synchronize.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    eng = dbengine.make_engine(make_url(url), pool_size=1, pre_ping=False)
    latencies = []
    with eng.connect() as conn:  # connect before the start, like a running worker
        conn.execute(text("SELECT 1"))
    start.wait()
    while True:
        t0 = time.perf_counter()
        job = queue.claim(eng, owner, CPU, 60)
        latencies.append(time.perf_counter() - t0)
        if job is None:
            break
        queue.complete(eng, job, failed=None, run_id=None)
    eng.dispose()
    out.put(latencies)


def queue_only(url: URL, workers: int) -> tuple[float, list[float]]:
    empty(url)
    eng = dbengine.make_engine(url)
    spec = JobSpec(repository="https://example.com/perf.git")
    queue.enqueue(eng, spec, [f"{i:040x}" for i in range(1, QUEUE_JOBS + 1)])
    eng.dispose()
    start = mp.Event()
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    raw = url.render_as_string(hide_password=False)
    procs = [mp.Process(target=_client, args=(raw, f"q{i}", start, out)) for i in range(workers)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # every client connected
    t0 = time.perf_counter()
    start.set()
    latencies = [x for _ in procs for x in out.get()]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    return QUEUE_JOBS / elapsed, latencies


# -- real workers -------------------------------------------------------------------------


def _runner(  # type: ignore[type-arg]
    url: str, name: str, cache: str, ready: mp.Queue, start: mp.synchronize.Event, out: mp.Queue
) -> None:
    eng = dbengine.make_engine(make_url(url), pre_ping=False)  # as `commitbench worker`
    options = FleetOptions(cache=Path(cache), drain=True, poll_s=0.05)
    worker = FleetWorker(eng, replace(options, max_jobs=1), name=name)
    # Warm-up: one job each (the first job of a runner probes the workers' environment,
    # which imports torch: seconds, once per runner and repository).
    worker.run()
    ready.put(name)
    start.wait()
    worker.options = options
    worker.tally = Tally()
    tally = worker.run()
    eng.dispose()
    out.put((tally.done, list(tally.claim_s)))


def real_workers(
    url: URL, workers: int, repo: Path, shas: list[str], cache: Path
) -> tuple[float, float, list[float]]:
    """(jobs/s, wall s, claim latencies) for `workers` warmed-up runner processes."""
    empty(url)
    eng = dbengine.make_engine(url)
    spec = JobSpec(repository=str(repo), benches="benches")
    warm, timed = shas[:workers], shas[workers:]
    queue.enqueue(eng, replace(spec, filter="tiny"), warm)
    ready: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    start = mp.Event()
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    raw = url.render_as_string(hide_password=False)
    procs = [
        mp.Process(target=_runner, args=(raw, f"w{i}", str(cache), ready, start, out))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get()
    queue.enqueue(eng, spec, timed)
    t0 = time.perf_counter()
    start.set()
    tallies = [out.get() for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    eng.dispose()
    done = sum(n for n, _ in tallies)
    if done != len(timed):
        sys.exit(f"only {done} of {len(timed)} jobs done")
    return len(timed) / wall, wall, [x for _, lat in tallies for x in lat]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60, help="jobs per real-worker run")
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    cores = os.cpu_count() or 1
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"cb_perf_fleet_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        )
    url = make_url(ADMIN_URL).set(database=name)
    root = Path(tempfile.mkdtemp(prefix="cb-perf-fleet-"))
    try:
        eng = dbengine.make_engine(url)
        migrate.upgrade(eng)
        eng.dispose()
        print(
            f"{cores} cores; target: claim p95 <= 20 ms at 8 workers, efficiency >= 0.8 "
            f"up to {cores} workers"
        )
        print(f"\nqueue only (claim + complete, no work), {QUEUE_JOBS} jobs")
        print(" workers   jobs/s  scaling  claim p50 ms  claim p95 ms")
        base = None
        for n in counts:
            rate, lat = queue_only(url, n)
            base = base or rate
            print(
                f"{n:8d} {rate:8.1f} {rate / base:7.2f}x {1000 * statistics.median(lat):13.2f}"
                f" {1000 * pct(lat, 0.95):13.2f}"
            )
        repo = root / "repo"
        shas = make_repo(repo, args.jobs + max(counts))
        print(f"\ncommitbench worker --drain, {args.jobs} jobs of a trivial bench")
        print(" workers    jobs/s  scaling  efficiency  wall s  claim p50 ms  claim p95 ms")
        base = None
        for n in counts:
            rate, wall, lat = real_workers(url, n, repo, shas[: args.jobs + n], root / "cache")
            base = base or rate
            scaling = rate / base
            print(
                f"{n:8d} {rate:9.2f} {scaling:7.2f}x {scaling / min(n, cores):10.2f} "
                f"{wall:7.1f} {1000 * statistics.median(lat):13.2f} {1000 * pct(lat, 0.95):13.2f}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        with admin.connect() as conn:
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.dispose()


if __name__ == "__main__":
    main()
