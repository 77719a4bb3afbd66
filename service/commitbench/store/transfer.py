"""Moving runs between stores: `export` (database → CSV) and `import` (CSV → database)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from commitbench.model.records import RunData
from commitbench.store import artifacts
from commitbench.store.csv import CsvStore, find_runs, read_run
from commitbench.store.sql import SqlStore


@dataclass(frozen=True)
class ImportSummary:
    runs: int
    results_seen: int
    results_added: int


def import_runs(
    store: SqlStore, path: Path, *, progress: Callable[[Path], None] | None = None
) -> ImportSummary:
    """Import every run under `path`. Every run is read and validated before anything is
    written, so a bad file leaves the database untouched. Idempotent."""
    runs: list[RunData] = []
    files: list[list[artifacts.Artifact]] = []  # each run's profile files, hashes checked
    for folder in find_runs(path):
        runs.append(read_run(folder))
        files.append(_files_of(folder, runs[-1]))
    seen = added = 0
    for data, found in zip(runs, files, strict=True):
        run_id = data.header.run.id
        if progress:
            progress(path / str(run_id))
        store.open_run(data.header)
        for unit in data.units:
            seen += len(unit)
            added += store.write_unit(run_id, unit)
        if data.end is not None:
            store.finish_run(run_id, data.end)
        artifacts.SqlArtifacts(store.engine).save(run_id, found)
    return ImportSummary(runs=len(runs), results_seen=seen, results_added=added)


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


def _files_of(folder: Path, data: RunData) -> list[artifacts.Artifact]:
    return artifacts.CsvArtifacts(folder.parent).of_run(
        data.header.run.id, artifacts.referenced(data.results)
    )
