"""`commitbench report`: a self-contained HTML page and PNG files."""

from __future__ import annotations

from pathlib import Path

import click

from commitbench.cli.common import (
    emit_json,
    global_options,
    globals_from,
    open_reading_store,
    policies_from,
    say,
    warn,
)
from commitbench.model.points import Series
from commitbench.model.words import plural
from commitbench.runner.vcs import Repository


def change_points(series: Series) -> list[tuple[int, float]]:
    """Change points of a series as (index, relative change) for the trend plot."""
    from commitbench.analysis.changepoints import detect

    return [(cp.index, cp.change) for cp in detect(list(series.medians))]


@click.command("report")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".commitbench/report"),
    show_default=True,
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    help="Only the results of the git repository at PATH [default: every repository].",
)
@click.option("--case", "case", metavar="PATTERN", help="Only cases matching (glob or substring).")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME",
    help="Plot these metrics [default: every timing].",
)
@click.option(
    "--max-plots",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="At most this many trend plots, taken in turn from each bench module; what is "
    "left out is said on the page and here.",
)
@click.option("--policy", metavar="STAT:N%", help="For the latest comparison table.")
@global_options
def report_command(
    out: Path,
    repo: Path | None,
    case: str | None,
    metrics: tuple[str, ...],
    max_plots: int,
    policy: str | None,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Trends per case and metric (each commit's value with its interval, and change
    points), the latest comparison, and device utilization of the latest run; works from
    CSV or PostgreSQL. --case and --metric select both the plots and the comparison."""
    # Here, not at the top: matplotlib is most of the start-up time of every other
    # command (perf/csv_read.py), and only the report draws.
    from commitbench.report import page

    g = globals_from(db, results, as_json)
    repository = Repository(repo).id if repo is not None else None
    store, engine = open_reading_store(g)
    try:
        index, note = page.write(
            store,
            out,
            repository=repository,
            case=case,
            metrics=metrics,
            policies=policies_from(policy, ()),
            change_points=change_points,
            max_plots=max_plots,
        )
    finally:
        if engine is not None:
            engine.dispose()
    pngs = sorted(p.name for p in out.glob("*.png"))
    if g.json:
        emit_json({"html": str(index), "png": pngs, "left_out": note or None})
    else:
        if note:
            warn(note)
        say(f"report: {index} ({plural(len(pngs), 'PNG file')} beside it)")
    return 0
