"""The store a fleet runner records a job through: SqlStore, fenced and patient.

Exactly one result per (commit, case, machine, profile), whatever the interleaving:

1. A reclaimed job's new runner skips what is recorded (Runner's `recorded` check,
   read after its claim committed).
2. Every unit is written in a transaction that first takes a share lock on the job row
   and checks the lease token (owner, attempt). A claim skips locked rows, so a unit
   either commits before the job is reclaimed (and the new runner's check sees it) or
   finds the job reclaimed and is refused (LeaseLost): a runner that lost its lease but
   lives on (paused, cut off from the database) cannot add a second result.
3. In the same transaction, SqlStore's advisory lock on (repository, sha, machine,
   profile) serialises writers of the same work, and results for cases already recorded
   there by any run (`run`, `check`, another job) are dropped (store/worklock.py). This
   covers two different jobs whose selections overlap (the same commit with and without
   --filter) running at once on identical machines.

A retried unit (lost connection after commit) is absorbed by the (run, case) key.

Writes are retried with exponential backoff while the database is away (restart,
connections terminated), up to `patience_s`; results are never spooled to CSV here: a
job that cannot record is given back and measured again, and what was recorded stays.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from commitbench.fleet.queue import ClaimedJob, check_lease
from commitbench.model.records import RecordedKey, ResultRecord, RunEnd, RunHeader
from commitbench.model.words import plural
from commitbench.store.engine import DB_LOST
from commitbench.store.sql import SqlStore

log = logging.getLogger(__name__)
T = TypeVar("T")
_jitter = random.SystemRandom()


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff
    And Jitter", 2015): many runners reconnecting after a restart do not stampede."""

    initial_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return _jitter.uniform(0, min(self.max_s, self.initial_s * 2**attempt))


def patiently(
    action: Callable[[], T],
    backoff: Backoff,
    *,
    patience_s: float | None,
    what: str,
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Run `action`, retrying on a lost database until it works, `patience_s` runs out
    (None: no limit) or `stop()`; then the last error is raised."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return action()
        except DB_LOST as err:
            waited = time.monotonic() - started
            if stop() or (patience_s is not None and waited >= patience_s):
                raise
            pause = backoff.delay(attempt)
            level = logging.WARNING if attempt == 0 else logging.INFO
            log.log(
                level,
                "database lost during %s (%s); retrying in %.1f s",
                what,
                type(err).__name__,
                pause,
            )
            sleep(pause)
            attempt += 1


class JobStore:
    """The Store a job's Runner records through (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        job: ClaimedJob,
        *,
        backoff: Backoff = Backoff(),
        patience_s: float = 600.0,
    ) -> None:
        self.job = job
        self._sql = SqlStore(engine, fence=self._fence)
        self._backoff = backoff
        self._patience_s = patience_s

    @property
    def location(self) -> str:
        return self._sql.location

    def _fence(
        self, conn: Connection, run_id: uuid.UUID, results: Sequence[ResultRecord]
    ) -> Sequence[ResultRecord]:
        check_lease(conn, self.job)
        return results

    def _patient(self, action: Callable[[], T], what: str) -> T:
        return patiently(action, self._backoff, patience_s=self._patience_s, what=what)

    def open_run(self, header: RunHeader) -> None:
        self._patient(lambda: self._sql.open_run(header), "open run")

    def write_unit(self, run_id: uuid.UUID, results: Sequence[ResultRecord]) -> int:
        return self._patient(lambda: self._sql.write_unit(run_id, results), "write results")

    def take_recorded_elsewhere(self, run_id: uuid.UUID) -> list[str]:
        taken = self._sql.take_recorded_elsewhere(run_id)
        if taken:
            log.info(
                "job %d: %s recorded meanwhile by another run",
                self.job.id,
                plural(len(taken), "case"),
            )
        return taken

    def interrupt_stale(self, fingerprint: str, gone: Callable[[Any], bool]) -> list[uuid.UUID]:
        return self._patient(
            lambda: self._sql.interrupt_stale(fingerprint, gone), "mark stale runs"
        )

    def finish_run(self, run_id: uuid.UUID, end: RunEnd) -> bool:
        return self._patient(lambda: self._sql.finish_run(run_id, end), "finish run")

    def recorded(self, key: RecordedKey) -> dict[str, str]:
        return self._patient(lambda: self._sql.recorded(key), "read recorded work")

    def selections(self, key: RecordedKey) -> list[dict[str, Any]]:
        return self._patient(lambda: self._sql.selections(key), "read recorded work")
