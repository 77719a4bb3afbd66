"""`commitbench export` and `commitbench import`."""

from __future__ import annotations

import uuid
from pathlib import Path

import click

from commitbench.cli.common import (
    emit_json,
    global_options,
    globals_from,
    info,
    require_db,
    say,
)
from commitbench.errors import ConfigError
from commitbench.model.words import plural
from commitbench.store import open_engine, transfer
from commitbench.store.sql import SqlStore


@click.command("export")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write to [default: the results directory].",
)
@click.option(
    "--run", "runs", multiple=True, metavar="UUID", help="Export only this run (repeatable)."
)
@global_options
def export_command(
    out: Path | None, runs: tuple[str, ...], db: str | None, results: Path | None, as_json: bool
) -> int:
    """Copy runs from the database into CSV run directories."""
    g = globals_from(db, results, as_json)
    try:
        run_ids = [uuid.UUID(r) for r in runs] or None
    except ValueError:
        raise ConfigError("--run takes a run UUID") from None
    target = out or g.settings.results
    engine = open_engine(require_db(g))
    try:
        written = transfer.export_runs(
            SqlStore(engine),
            target,
            run_ids,
            progress=None if g.json else lambda rid: info(f"exporting run {rid}"),
        )
    finally:
        engine.dispose()
    if g.json:
        emit_json({"out": str(target), "runs": [p.name for p in written]})
    else:
        say(f"exported {plural(len(written), 'run')} to {target}")
    return 0


@click.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@global_options
def import_command(path: Path, db: str | None, results: Path | None, as_json: bool) -> int:
    """Load CSV results (a results directory or one run directory) into the database.

    Everything is validated before anything is written; importing twice adds nothing.
    """
    g = globals_from(db, results, as_json)
    engine = open_engine(require_db(g))
    try:
        summary = transfer.import_runs(
            SqlStore(engine),
            path,
            progress=None if g.json else lambda p: info(f"importing {p}"),
        )
    finally:
        engine.dispose()
    if g.json:
        emit_json(
            {
                "runs": summary.runs,
                "results_seen": summary.results_seen,
                "results_added": summary.results_added,
                "artifacts_added": summary.artifacts_added,
            }
        )
    else:
        say(
            f"imported {plural(summary.runs, 'run')}: "
            f"{plural(summary.results_added, 'new result')} "
            f"({summary.results_seen - summary.results_added} already present)"
            + (
                f", {plural(summary.artifacts_added, 'new profile file')}"
                if summary.artifacts_added
                else ""
            )
        )
    return 0
