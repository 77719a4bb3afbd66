"""MetricsRecorder: buffers a run's results and writes them to a store, one unit at a time.

A unit (the results added since the last `flush`, normally one bench module's) is
written in one transaction. If the database is lost, or refuses writes (turned
read-only, a standby after a failover), the unit is retried once on a fresh connection
(a restarted server or a dropped connection costs nothing); if that fails too, this
unit and everything after it go to the CSV spool under the results directory, and
`spooled_to` says which directory to `commitbench import`.

If the CSV directory cannot take a file (disk full, quota, file size limit, a
read-only file system), nothing is lost in memory: the unit stays buffered and is
written with the next one, and what is still unwritten when the run closes is left in
`unwritten`, with the reason in `storage_error`, for the caller to report. Such a run is
closed `interrupted` (when its end can be written at all), so a later run measures the
missing cases again.
"""

from __future__ import annotations

import errno
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType

from commitbench.model.records import (
    FAILED_STATUSES,
    DeviceSample,
    RecordError,
    ResultRecord,
    RunEnd,
    RunHeader,
    check_samples,
    utcnow,
)
from commitbench.store import Store
from commitbench.store.csv import CsvStore
from commitbench.store.engine import refuses_writes, unwritable

log = logging.getLogger(__name__)

# A directory that cannot take a file now; anything else from the file system (a path
# that is not a directory, permissions) is the user's to fix and is raised.
STORAGE_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


class MetricsRecorder:
    """Records one run. Use as a context manager, or call open() and close()."""

    def __init__(
        self,
        store: Store,
        header: RunHeader,
        *,
        spool: Path | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.header = header
        self._store = store
        self._spool_root = spool
        self._clock = clock
        self._pending: list[ResultRecord] = []
        self._run_samples: list[DeviceSample] = []
        self._labels: set[str] = set()
        self._statuses: list[str] = []
        self.spooled_to: Path | None = None
        self.written = 0
        # Cases another run recorded first: measured here, dropped, not written.
        self.recorded_elsewhere: list[str] = []
        # Measured, but the CSV directory could not take them (see the module doc).
        self.unwritten: list[ResultRecord] = []
        self.end_unwritten = False
        self.storage_error: str | None = None
        self._opened = False
        self._store_open = False  # open_run reached the current store
        self._spooling = False
        self._closed = False

    @property
    def location(self) -> str:
        return self._store.location

    @property
    def run_id(self) -> uuid.UUID:
        return self.header.run.id

    def open(self) -> MetricsRecorder:
        self._opened = True
        self._write(lambda: None, retry=False)
        return self

    def add(self, result: ResultRecord) -> None:
        """Buffer a result; it is written by the next flush()."""
        self._check_open()
        if result.case.label in self._labels:
            raise RecordError(f"{result.case.label} recorded twice in run {self.run_id}")
        self._labels.add(result.case.label)
        self._statuses.append(result.status)
        self._pending.append(result)

    def add_run_samples(self, samples: Iterable[DeviceSample]) -> None:
        """Samples taken while no case ran; written when the run is closed."""
        self._check_open()
        batch = list(samples)
        check_samples(batch)
        self._run_samples.extend(batch)

    def flush(self) -> None:
        """Write the buffered results as one unit (one transaction); on a full disk
        they stay buffered (see the module doc)."""
        self._check_open()
        if not self._pending:
            return
        unit = list(self._pending)
        if not self._write(lambda: self._store.write_unit(self.run_id, unit)):
            return
        self._pending = self._pending[len(unit) :]
        self.written += len(unit)
        self.recorded_elsewhere.extend(self._store.take_recorded_elsewhere(self.run_id))

    def close(self, *, interrupted: bool = False) -> str:
        """Flush, then mark the run finished. Returns the run status."""
        if self._closed:
            return self._status(interrupted)
        self.flush()
        self.unwritten = list(self._pending)
        # A run missing results must not read as complete: a later run resumes it.
        status = self._status(interrupted or bool(self.unwritten))
        end = RunEnd(
            # A clock step backwards must not make the run end before it started.
            finished_at=max(self._clock(), self.header.run.started_at),
            status=status,
            device_samples=tuple(self._run_samples),
        )
        self.end_unwritten = not self._write(lambda: self._store.finish_run(self.run_id, end))
        self._closed = True
        return status

    def __enter__(self) -> MetricsRecorder:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._opened:
            self.close(interrupted=exc_type is not None)

    # -- internals -----------------------------------------------------------------------

    def _status(self, interrupted: bool) -> str:
        if interrupted:
            return "interrupted"
        return "failed" if FAILED_STATUSES.intersection(self._statuses) else "ok"

    def _check_open(self) -> None:
        if not self._opened or self._closed:
            raise RuntimeError("MetricsRecorder is not open")

    def _write(self, write: Callable[[], object], *, retry: bool = True) -> bool:
        """Open the run in the store if that is still to do, then `write`; False when
        the CSV directory cannot take it (STORAGE_FULL), with the reason kept."""

        def opened_then_write() -> None:
            if not self._store_open:
                self._store.open_run(self.header)
                self._store_open = True
                if self._spooling:
                    self.spooled_to = self._spool_dir()
            write()

        try:
            self._guard(opened_then_write, retry=retry)
        except OSError as err:
            if err.errno not in STORAGE_FULL:
                raise
            self.storage_error = f"{err.strerror} ({self._store.location})"
            log.warning(
                "cannot write run %s to %s: %s; its results stay in memory",
                self.run_id,
                self._store.location,
                err.strerror,
            )
            return False
        return True

    def _guard(self, write: Callable[[], object], *, retry: bool = True) -> None:
        """Run a store write; on a lost or read-only database retry once, then spool to
        CSV."""
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            try:
                write()
                return
            except Exception as err:
                if not unwritable(err):
                    raise
                if isinstance(self._store, CsvStore) or self._spool_root is None:
                    raise
                why = "refuses writes" if refuses_writes(err) else type(err).__name__
                log.info("database write failed (%s), attempt %d", why, attempt + 1)
        self._fail_over()
        write()  # self._store is the CSV spool now

    def _spool_dir(self) -> Path:
        assert self._spool_root is not None  # noqa: S101 - only when spooling
        return CsvStore(self._spool_root).run_dir(self.run_id)

    def _fail_over(self) -> None:
        assert self._spool_root is not None  # noqa: S101 - checked by _guard
        spool = CsvStore(self._spool_root)
        log.warning(
            "database %s lost or read-only during run %s; spooling the rest of the run to %s",
            self._store.location,
            self.run_id,
            spool.run_dir(self.run_id),
        )
        self._store = spool
        self._store_open = False
        self._spooling = True
