"""`commitbench run`: record a run of the current commit.

Until the runner lands this measures the built-in self-check workloads.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from commitbench import machine, selfcheck, vcs
from commitbench.cli.common import emit_json, global_options, globals_from, info, stderr, warn
from commitbench.records import TRIGGERS, RunHeader, RunInfo, utcnow
from commitbench.store import open_store


@click.command("run")
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Git repository whose HEAD is recorded.",
)
@click.option("--branch", help="Branch to record the run under [default: the checked-out one].")
@click.option("--trigger", type=click.Choice(TRIGGERS), default="manual", show_default=True)
@click.option(
    "--repeat",
    type=click.IntRange(min=6),
    default=30,
    show_default=True,
    help="Timed repetitions per case.",
)
@global_options
def run_command(
    repo: Path,
    branch: str | None,
    trigger: str,
    repeat: int,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Measure and record the current commit."""
    g = globals_from(db, results, as_json)
    commit = vcs.commit_info(repo)
    header = RunHeader(
        run=RunInfo(
            id=uuid.uuid4(),
            started_at=utcnow(),
            trigger=trigger,
            profile="smoke",
            branch=branch or vcs.current_branch(repo),
            environment=machine.environment(),
        ),
        commit=commit,
        machine=machine.fingerprint(),
    )
    store, engine = open_store(g.settings.db, g.settings.results, warn)
    try:
        if not g.json:
            info(
                f"run {header.run.id}: {commit.sha[:12]} {commit.subject or ''} → {store.location}"
            )
        outcome = selfcheck.record(
            store,
            header,
            repeat=repeat,
            spool=g.settings.results if engine is not None else None,
            on_result=lambda r: None if g.json else info(f"  {r.status:7} {r.case.label}"),
        )
    finally:
        if engine is not None:
            engine.dispose()
    if g.json:
        emit_json(
            {
                "run_id": outcome.run_id,
                "status": outcome.status,
                "location": outcome.location,
                "spooled_to": outcome.spooled_to,
                "results": [
                    {
                        "case": r.case.label,
                        "status": r.status,
                        "median_s": next((m.median for m in r.metrics if m.name == "time"), None),
                    }
                    for r in outcome.results
                ],
            }
        )
    else:
        table = Table("case", "status", "median", "95% CI of median")
        for r in outcome.results:
            t = next(m for m in r.metrics if m.name == "time")
            ci = (
                f"{t.ci_low * 1e3:.3f} - {t.ci_high * 1e3:.3f} ms"
                if t.ci_low is not None and t.ci_high is not None
                else "n/a"
            )
            table.add_row(Text(r.case.label), r.status, f"{(t.median or 0) * 1e3:.3f} ms", ci)
        stderr.print(table)
    if outcome.spooled_to:
        warn(
            f"the database was lost mid-run; the rest of run {outcome.run_id} is in "
            f"{outcome.spooled_to}. When the database is back, load it with: "
            f"commitbench import {outcome.spooled_to}"
        )
        return 1
    return 0 if outcome.status == "ok" else 1
