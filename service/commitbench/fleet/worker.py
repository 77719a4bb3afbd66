"""The fleet runner: claims jobs its machine can serve and runs each exactly as
`commitbench run` does (the same Runner), holding a lease renewed by a heartbeat.

- A job whose Runner finishes is `done`, or `failed` when a case failed, crashed or
  timed out (the cases that make `run` exit 1); both keep their results.
- An attempt that errors (git, setup of the run, anything but the benches' own
  failures, which are results) puts the job back to pending after
  `retry_in_s * 2**(attempt-1)`; the last attempt parks it with its error.
- The database going away: every call is retried with backoff (the queue's forever,
  a job's writes up to `patience_s`); a job that cannot record is given back.
- stop(): finish the current job, then return; interrupt(): give the current job back
  now (the CLI maps the first SIGTERM/SIGINT to stop, the second to interrupt).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from commitbench.fleet import queue
from commitbench.fleet.queue import ClaimedJob, LeaseLost
from commitbench.fleet.repos import RepoCache
from commitbench.fleet.store import Backoff, JobStore, patiently
from commitbench.model.records import CommitInfo, MachineInfo, ResultRecord
from commitbench.model.stats import percentile
from commitbench.model.text import printable
from commitbench.model.words import plural
from commitbench.runner import machine
from commitbench.runner.options import BROKEN, CommitOutcome, RunOptions
from commitbench.runner.runner import Runner
from commitbench.runner.vcs import RevSpec
from commitbench.store.engine import DB_LOST

log = logging.getLogger(__name__)


class Interrupted(BaseException):
    """Raised in the main thread to abandon the current job now (a second SIGTERM)."""


@dataclass(frozen=True)
class FleetOptions:
    cache: Path
    lease_s: float = 60.0
    poll_s: float = 5.0
    drain: bool = False
    max_jobs: int | None = None
    retry_in_s: float = 30.0
    backoff: Backoff = field(default_factory=Backoff)
    patience_s: float = 600.0
    isolate: str = "module"
    sample_interval_s: float = 0.1
    pass_env: tuple[str, ...] = ()  # variables bench code gets beyond the allow-list
    affinity: frozenset[int] | None = None  # the CPUs this machine's workers run on


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    errored: int = 0
    given_back: int = 0
    lost: int = 0
    # Seconds each claim took (the queue's overhead per job), the latest 10,000.
    claim_s: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    @property
    def jobs(self) -> int:
        return self.done + self.failed + self.errored + self.given_back + self.lost

    def summary(self) -> dict[str, Any]:
        """Counts, and claim latency percentiles in milliseconds (model/stats.py)."""
        ranked = sorted(self.claim_s)

        def pct(q: float) -> float | None:
            return round(1000 * percentile(ranked, 100 * q), 3) if ranked else None

        return {
            "done": self.done,
            "failed": self.failed,
            "errored": self.errored,
            "given_back": self.given_back,
            "lost": self.lost,
            "claims": len(ranked),
            "claim_p50_ms": pct(0.5),
            "claim_p95_ms": pct(0.95),
        }


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Heartbeat:
    """Renews the lease every lease_s/3 in a thread; `lost` once it is not ours."""

    def __init__(self, engine: Engine, job: ClaimedJob, lease_s: float) -> None:
        self.engine = engine
        self.job = job
        self.lease_s = lease_s
        self.lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job.id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._done.wait(self.lease_s / 3):
            try:
                if not queue.heartbeat(self.engine, self.job, self.lease_s):
                    log.warning("job %d: lease lost to another runner", self.job.id)
                    self.lost = True
                    return
            except DB_LOST as err:  # the next beat tries again on a fresh connection
                log.info("job %d: heartbeat failed (%s)", self.job.id, type(err).__name__)


class _Log:
    """Runner events as log lines (a runner service has no terminal)."""

    def __init__(self, job: ClaimedJob) -> None:
        self.job = job

    def plan(self, commits: Sequence[str]) -> None:
        pass

    def commit_started(self, index: int, commit: CommitInfo) -> None:
        log.info("job %d: %s %s", self.job.id, commit.sha[:12], commit.subject)

    def case_started(self, label: str) -> None:
        pass

    def case_finished(self, result: ResultRecord) -> None:
        log.info("job %d: %s %s", self.job.id, result.status, printable(result.case.label))

    def commit_finished(self, outcome: CommitOutcome) -> None:
        pass


def broken_summary(outcomes: Sequence[CommitOutcome]) -> str | None:
    broken = [r for o in outcomes for r in o.results if r.status in BROKEN]
    if not broken:
        return None
    lines = [f"{plural(len(broken), 'case')} broke:"]
    for r in broken:
        last = (r.error or "").strip().splitlines()[-1:] or [""]
        lines.append(f"{r.status}: {printable(r.case.label)}: {last[0]}")
    return "\n".join(lines)


class FleetWorker:
    def __init__(
        self,
        engine: Engine,
        options: FleetOptions,
        *,
        name: str | None = None,
        fingerprint: Callable[[], MachineInfo] = machine.fingerprint,
    ) -> None:
        self.engine = engine
        self.options = options
        self.name = name or runner_name()
        self.cache = RepoCache(options.cache)
        self._fingerprint = fingerprint
        self._stop = threading.Event()
        # The workers' environment per repository: probed by the first job of each, as
        # `commitbench run` probes once per invocation (a probe imports torch: seconds).
        self._environments: dict[str, dict[str, Any]] = {}
        self.current: ClaimedJob | None = None
        self.tally = Tally()

    def stop(self) -> None:
        """Finish the current job, then return from run()."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _patient(self, action: Callable[[], Any], what: str) -> Any:
        return patiently(
            action, self.options.backoff, patience_s=None, what=what, stop=self._stop.is_set
        )

    def run(self) -> Tally:
        host = self._fingerprint()
        o = self.options
        log.info("runner %s serving %s x%d", self.name, host.gpu_name or "cpu", host.gpu_count)
        try:
            while not self._stop.is_set():
                if o.max_jobs is not None and self.tally.jobs >= o.max_jobs:
                    break
                job = self._claim(host)
                if job is None:
                    if (
                        o.drain
                        and self._patient(lambda: queue.left_for(self.engine, host), "count jobs")
                        == 0
                    ):
                        break
                    self._stop.wait(o.poll_s)
                    continue
                self._run_job(job, host)
        except DB_LOST:
            if not self._stop.is_set():
                raise
            log.warning("stopping while the database is away")
        return self.tally

    def _claim(self, host: MachineInfo) -> ClaimedJob | None:
        t0 = time.perf_counter()
        job: ClaimedJob | None = self._patient(
            lambda: queue.claim(self.engine, self.name, host, self.options.lease_s), "claim"
        )
        self.tally.claim_s.append(time.perf_counter() - t0)
        return job

    def _run_job(self, job: ClaimedJob, host: MachineInfo) -> None:
        self.current = job
        log.info(
            "job %d: claimed %s@%s (attempt %d of %d)",
            job.id,
            job.spec.repository,
            job.sha[:12],
            job.attempt,
            job.max_attempts,
        )
        try:
            with Heartbeat(self.engine, job, self.options.lease_s):
                outcomes = self._measure(job, host)
        except Interrupted:
            self._give_back(job)
            self._stop.set()
            return
        except LeaseLost as err:
            log.warning("job %d: %s; its results so far are kept", job.id, err)
            self.tally.lost += 1
            return
        except DB_LOST as err:
            log.warning(
                "job %d: database lost (%s); giving the job back", job.id, type(err).__name__
            )
            self._give_back(job)
            return
        except Exception as err:  # a runner survives whatever one job does
            self._errored(job, f"{type(err).__name__}: {err}")
            return
        finally:
            self.current = None
        failed = broken_summary(outcomes)
        run_id = next((o.run_id for o in outcomes if o.run_id is not None), None)
        if self._patient(
            lambda: queue.complete(self.engine, job, failed=failed, run_id=run_id), "finish job"
        ):
            self.tally.failed += failed is not None
            self.tally.done += failed is None
        else:
            self.tally.lost += 1

    def _measure(self, job: ClaimedJob, host: MachineInfo) -> list[CommitOutcome]:
        spec = job.spec
        repo = self.cache.get(spec.repository, job.sha)
        options = RunOptions(
            repo=repo.root,
            revs=RevSpec((job.sha,)),
            benches=spec.benches,
            filter=spec.filter,
            profile=spec.profile,
            timeout_s=spec.timeout_s,
            branch=spec.branch,
            trigger=spec.trigger,
            isolate=self.options.isolate,
            sample_interval_s=self.options.sample_interval_s,
            pass_env=self.options.pass_env,
            params=spec.params,
            affinity=self.options.affinity,
        )
        store = JobStore(
            self.engine, job, backoff=self.options.backoff, patience_s=self.options.patience_s
        )
        runner = Runner(
            options,
            store,
            spool=None,
            events=_Log(job),
            fingerprint=lambda: host,
            environment=self._environments.get(spec.repository),
        )
        outcomes = runner.run(runner.plan())
        if runner.environment is not None:
            self._environments[spec.repository] = runner.environment
        return outcomes

    def _errored(self, job: ClaimedJob, error: str) -> None:
        delay = self.options.retry_in_s * 2 ** (job.attempt - 1)
        last = job.attempt >= job.max_attempts
        log.warning(
            "job %d: attempt %d failed (%s); %s",
            job.id,
            job.attempt,
            error,
            "parked" if last else f"retry in {delay:g} s",
        )
        self._patient(lambda: queue.fail_attempt(self.engine, job, error, delay), "fail job")
        self.tally.errored += 1

    def _give_back(self, job: ClaimedJob) -> None:
        try:
            self._patient(lambda: queue.release(self.engine, job), "give the job back")
        except DB_LOST:
            log.warning("job %d: not given back (database away); its lease will expire", job.id)
        self.tally.given_back += 1
