"""Opening the store a command records into or reads from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from commitbench.errors import DatabaseUnavailable
from commitbench.store.csv import CsvStore

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from commitbench.store.sql import SqlStore

# The database stack (SQLAlchemy, psycopg, Alembic; about a second to import) is loaded
# inside the functions, only when a database is asked for: a command on CSV results
# never pays for it.


def open_engine(raw_url: str, *, require_schema: bool = True, pre_ping: bool = True) -> Engine:
    """A checked engine: reachable, credentials accepted, schema at head if required."""
    from commitbench.store import engine as dbengine
    from commitbench.store import migrate

    url = dbengine.parse_url(raw_url)
    engine = dbengine.make_engine(url, pre_ping=pre_ping)
    try:
        dbengine.check(engine)
        if require_schema:
            migrate.require_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def open_store(
    db: str | None, results: Path, warn: Callable[[str], None]
) -> tuple[SqlStore | CsvStore, Engine | None]:
    """The store a run records into: PostgreSQL when configured and reachable, else CSV.

    A malformed URL, refused credentials or an outdated schema stop the command (exit 2)
    before anything is measured; an unreachable server only costs a warning, because
    the CSV results can be imported later.
    """
    if not db:
        return CsvStore(results), None
    from commitbench.store import engine as dbengine
    from commitbench.store import migrate
    from commitbench.store.sql import SqlStore

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


def open_reading_store(db: str | None, results: Path) -> tuple[SqlStore | CsvStore, Engine | None]:
    """Where analysis commands read: the database when configured (it must be reachable:
    a comparison against partial CSV would mislead), else the CSV results."""
    if db:
        from commitbench.store.sql import SqlStore

        engine = open_engine(db)
        return SqlStore(engine), engine
    return CsvStore(results), None
