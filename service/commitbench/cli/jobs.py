"""`commitbench jobs`: the fleet's queue, newest first, and how many jobs are in each state."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from commitbench.cli.common import emit_json, global_options, globals_from, require_db, stdout
from commitbench.fleet import status
from commitbench.store import open_engine
from commitbench.store.tables import JOB_STATES


def fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


@click.command("jobs")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(JOB_STATES),
    help="Only jobs in STATE (repeat for several) [default: all].",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="At most this many jobs, newest first.",
)
@global_options
def jobs_command(
    states: tuple[str, ...], limit: int, db: str | None, results: Path | None, as_json: bool
) -> int:
    """Show the job queue: state, commit, runner and age of running jobs, errors."""
    g = globals_from(db, results, as_json)
    engine = open_engine(require_db(g))
    try:
        rows = status.list_jobs(engine, states, limit)
        counts = status.state_counts(engine)
    finally:
        engine.dispose()
    if g.json:
        emit_json({"counts": counts, "jobs": [dataclasses.asdict(r) for r in rows]})
        return 0
    table = Table(box=None, pad_edge=False)
    for name in (
        "id",
        "state",
        "commit",
        "branch",
        "machine",
        "attempts",
        "runner",
        "age",
        "error",
    ):
        table.add_column(name, justify="right" if name in ("id", "attempts") else "left")
    for r in rows:
        first = (r.error or "").strip().splitlines()[-1:] or [""]
        cells = (
            str(r.id),
            r.state,
            r.sha[:12],
            r.branch or "",
            r.kind,
            f"{r.attempts}/{r.max_attempts}",
            (r.runner or "") if r.state == "running" else "",
            fmt_age(r.age_s),
            first[0][:80],
        )
        table.add_row(*(Text(c) for c in cells))  # Text: no markup in errors or names
    stdout.print(table)
    click.echo(", ".join(f"{n} {state}" for state, n in counts.items()))
    return 0
