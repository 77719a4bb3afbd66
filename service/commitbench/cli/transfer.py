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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "pytest-benchmark", "asv"]),
    default="csv",
    show_default=True,
    help="csv: commitbench's results; pytest-benchmark: a --benchmark-json FILE; "
    "asv: asv's results directory.",
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="pytest-benchmark, asv: the clone the commits are read from [default: .].",
)
@click.option(
    "--repository",
    metavar="URL",
    default=None,
    help="pytest-benchmark, asv: the repository's name, to import without a clone.",
)
@click.option(
    "--commit",
    metavar="SHA",
    default=None,
    help="pytest-benchmark: record for this commit (a file without one, or a dirty one).",
)
@global_options
def import_command(
    path: Path,
    fmt: str,
    repo: Path | None,
    repository: str | None,
    commit: str | None,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Load results into the database: commitbench's CSV (a results directory or one run
    directory), a pytest-benchmark JSON file or an asv results directory.

    Everything is validated before anything is written; importing twice adds nothing.
    """
    g = globals_from(db, results, as_json)
    if fmt == "csv" and (repo or repository or commit):
        raise ConfigError("--repo, --repository and --commit are for pytest-benchmark and asv")
    engine = open_engine(require_db(g))
    progress = None if g.json else lambda p: info(f"importing {p}")
    try:
        if fmt == "csv":
            summary = transfer.import_runs(SqlStore(engine), path, progress=progress)
        else:
            from commitbench.importers import load  # git and the readers: only here

            summary = load.import_foreign(
                SqlStore(engine),
                fmt,
                path,
                load.commits_from(repo, repository),
                commit=commit,
                progress=progress,
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
