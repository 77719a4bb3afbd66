"""What `check`, `compare --measure` and `bisect` share: a lab that measures commits now."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from commitbench.cli.common import Globals, warn
from commitbench.cli.progress import Quiet
from commitbench.runner.lab import RunnerLab
from commitbench.runner.options import RunOptions
from commitbench.runner.runner import Runner
from commitbench.store import open_store

if TYPE_CHECKING:  # compare on CSV loads no database stack
    from commitbench.store.csv import CsvStore
    from commitbench.store.sql import SqlStore


@contextmanager
def measuring(g: Globals, options: RunOptions) -> Iterator[tuple[RunnerLab, SqlStore | CsvStore]]:
    """A lab measuring through a runner of `options` into the configured store (the
    database, with the CSV results as its spool; else CSV), and that store. The plan is
    checked first, so bad input fails before anything is measured; the engine is
    disposed of at the end."""
    store, engine = open_store(g.settings.db, g.settings.results, warn)
    try:
        runner = Runner(
            options, store, spool=g.settings.results if engine else None, events=Quiet()
        )
        runner.plan()
        yield RunnerLab(runner, store), store
    finally:
        if engine is not None:
            engine.dispose()
