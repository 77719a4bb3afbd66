"""Moving runs between stores: `export` (database → CSV) and `import` (CSV → database)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import DataError, IntegrityError

from commitbench.errors import CommitbenchError, CsvFormatError
from commitbench.model.records import RunData
from commitbench.store import artifacts
from commitbench.store.csv import CsvStore, find_runs, read_run
from commitbench.store.sql import SqlStore


@dataclass(frozen=True)
class ImportSummary:
    runs: int
    results_seen: int
    results_added: int
    artifacts_added: int = 0


def import_runs(
    store: SqlStore, path: Path, *, progress: Callable[[Path], None] | None = None
) -> ImportSummary:
    """Import every run under `path`, all or nothing. Every run is read and validated
    (csvmanifest.py and csvread.py: the files, their shape, and every value against the
    records' rules), and every profile file checked (artifacts.check_files: a regular
    file within the cap whose bytes hash to its name), before anything is written; then
    the runs and their files are all written in one transaction, so a bad file, or a
    database that refuses a row after all, leaves the database untouched. Idempotent: a
    run, result or file already there is left as it is."""
    runs: list[tuple[Path, RunData]] = [(folder, read_run(folder)) for folder in find_runs(path)]
    files = [_files_of(folder, data) for folder, data in runs]
    return write_runs(
        store, [(str(folder), data) for folder, data in runs], progress=progress, files=files
    )


def write_runs(
    store: SqlStore,
    runs: Sequence[tuple[str, RunData]],
    *,
    progress: Callable[[Path], None] | None = None,
    error: type[CommitbenchError] = CsvFormatError,
    files: Sequence[Sequence[artifacts.ArtifactFile]] | None = None,
) -> ImportSummary:
    """Write validated runs (each named by where it was read), and their checked profile
    files (`files`, one list per run), in one transaction, all or nothing; a run, result
    or file already there is left as it is. A row the database refuses after all rolls
    everything back and raises `error` naming the run's source."""
    seen = added = kept = 0
    where = ""
    try:
        with store.one_transaction() as tx:
            for where, data in runs:
                run_id = data.header.run.id
                if progress:
                    progress(Path(where))
                tx.open_run(data.header)
                for unit in data.units:
                    seen += len(unit)
                    added += tx.write_unit(run_id, unit)
                if data.end is not None:
                    tx.finish_run(run_id, data.end)
            for (run_where, data), found in zip(runs, files or [], strict=False):
                where = run_where  # named if the database refuses a row
                # Read as they are written, each checked again: memory holds one file.
                kept += tx.save_artifacts(data.header.run.id, (f.read() for f in found))
    except (DataError, IntegrityError) as exc:
        # Validation is meant to leave nothing for the database to refuse; if it does,
        # the whole import is rolled back and the run is named.
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise error(f"{where}: refused by the database ({reason}); nothing was imported") from None
    return ImportSummary(
        runs=len(runs), results_seen=seen, results_added=added, artifacts_added=kept
    )


def export_runs(
    store: SqlStore,
    out: Path,
    run_ids: Sequence[uuid.UUID] | None = None,
    *,
    progress: Callable[[uuid.UUID], None] | None = None,
) -> list[Path]:
    """Write runs from the database as CSV run directories under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    csv = CsvStore(out)
    written = []
    for run_id in run_ids if run_ids is not None else store.run_ids():
        if progress:
            progress(run_id)
        written.append(csv.write_run(store.load_run(run_id)))
        found = artifacts.SqlArtifacts(store.engine).of_run(run_id, {})
        artifacts.CsvArtifacts(out).save(run_id, found)
    return written


def _files_of(folder: Path, data: RunData) -> list[artifacts.ArtifactFile]:
    return artifacts.check_files(
        folder.parent, data.header.run.id, artifacts.referenced(data.results)
    )
