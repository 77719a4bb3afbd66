"""Where runs are recorded: PostgreSQL (store.sql) or versioned CSV (store.csv)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine

from commitbench.records import RecordedKey, ResultRecord, RunEnd, RunHeader


class Store(Protocol):
    """What MetricsRecorder needs of a store. Each call is one atomic unit."""

    @property
    def location(self) -> str: ...

    def open_run(self, header: RunHeader) -> None: ...

    def write_unit(self, run_id: uuid.UUID, results: Sequence[ResultRecord]) -> int: ...

    def finish_run(self, run_id: uuid.UUID, end: RunEnd) -> bool: ...

    def recorded(self, key: RecordedKey) -> set[str]: ...


def open_store(
    db: str | None, results: Path, warn: Callable[[str], None]
) -> tuple[Store, Engine | None]:
    """The store a run records into: PostgreSQL when configured and reachable, else CSV.

    A malformed URL, refused credentials or an outdated schema stop the command (exit 2)
    before anything is measured; an unreachable server only costs a warning, because
    the CSV results can be imported later.
    """
    # Imported here: the store modules import this package (for Store), so importing them
    # at the top would be circular.
    from commitbench.errors import DatabaseUnavailable
    from commitbench.store import engine as dbengine
    from commitbench.store import migrate
    from commitbench.store.csv import CsvStore
    from commitbench.store.sql import SqlStore

    if not db:
        return CsvStore(results), None
    engine = dbengine.make_engine(dbengine.parse_url(db))
    try:
        dbengine.check(engine)
        migrate.require_current(engine)
    except DatabaseUnavailable as err:
        engine.dispose()
        warn(
            f"{err}; recording to CSV under {results} instead "
            f"(load it later with `commitbench import {results}`)"
        )
        return CsvStore(results), None
    except BaseException:
        engine.dispose()
        raise
    return SqlStore(engine), engine
