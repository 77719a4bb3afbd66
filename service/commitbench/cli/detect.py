"""`commitbench detect` and `commitbench regressions [ack ID]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from commitbench.analysis.regressions import detect_all, step_of
from commitbench.cli.common import (
    check_metrics,
    emit_json,
    global_options,
    globals_from,
    open_reading_store,
    policies_from,
    require_db,
    say,
    stdout,
)
from commitbench.model.points import PointFilter
from commitbench.model.text import printable
from commitbench.model.words import plural
from commitbench.runner.vcs import Repository
from commitbench.store import open_engine
from commitbench.store import regressions as table
from commitbench.store.tables import REGRESSION_STATES

_KIND_STYLE = {"regression": "red", "improvement": "green", "contention": "yellow"}


@click.command("detect")
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    help="Only this repository [default: every repository].",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME",
    help="Series of these metrics [default: every timing].",
)
@click.option(
    "--policy",
    metavar="STAT:N%",
    help="Minimum effect [default: [tool.commitbench] policy, or median:5%].",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="PATTERN=POLICY",
    help="Per-case minimum effect, e.g. 'matmul.*=median:3%'.",
)
@click.option(
    "--p-max",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.001,
    show_default=True,
    help="Largest accepted p-value.",
)
@click.option(
    "--window",
    type=click.IntRange(min=10),
    default=50,
    show_default=True,
    help="Points compared on each side of a change.",
)
@global_options
def detect_command(
    repo: Path | None,
    metrics: tuple[str, ...],
    policy: str | None,
    thresholds: tuple[str, ...],
    p_max: float,
    window: int,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Find steps in the history of every series (case, metric, machine, profile), along
    each branch's line of commits (a commit's value counts every run of it).

    With a database, regressions are written to the `regressions` table (re-running adds
    nothing) and shown as Grafana annotations. Exit 1 when an open regression is found.
    """
    g = globals_from(db, results, as_json)
    policies = policies_from(policy, thresholds)
    repository = Repository(repo).id if repo is not None else None
    store, engine = open_reading_store(g)
    found: list[dict[str, Any]] = []
    try:
        points = store.series_points(PointFilter(repository=repository))
        if points:
            check_metrics(metrics, (p.metric for p in points), f"in {store.location}")
        for s, f in detect_all(
            points,
            metrics=metrics,
            min_effect=lambda case: policies.for_case(case).threshold,
            p_max=p_max,
            window=window,
        ):
            row_id = None
            if f.kind == "regression":
                row_id = store.save_regression(s, step_of(f))
            found.append(
                {
                    "id": row_id,
                    "kind": f.kind,
                    "case": s.case,
                    "metric": s.metric,
                    "machine": s.machine_label,
                    "branch": s.branch,
                    "profile": s.profile,
                    "sha": s.shas[f.index],
                    "subject": s.subjects[f.index],
                    "before": f.before,
                    "after": f.after,
                    "change_pct": f.change * 100,
                    "p_value": f.p_value,
                    "fixed_by": s.shas[f.fixed_by] if f.fixed_by is not None else None,
                    "contended": f.contended,
                }
            )
    finally:
        if engine is not None:
            engine.dispose()
    if g.json:
        emit_json({"change_points": found})
    else:
        out = Table(
            "kind",
            "case",
            "metric",
            "machine",
            "branch",
            "commit",
            "change",
            "p",
            "state",
            title=plural(len(found), "change point"),
        )
        for r in found:
            state = (
                ("fixed at " + r["fixed_by"][:8])
                if r["fixed_by"]
                else ("open" if r["kind"] == "regression" else "")
            )
            if r["kind"] == "contention":
                state = f"{plural(r['contended'], 'commit')} under contention: not a regression"
            out.add_row(
                Text(r["kind"], style=_KIND_STYLE[r["kind"]]),
                Text(printable(r["case"])),
                r["metric"],
                Text(r["machine"]),
                r["branch"] or "",
                r["sha"][:12],
                f"{r['change_pct']:+.1f}%",
                f"{r['p_value']:.1e}",
                state,
            )
        stdout.print(out)
    open_found = any(r["kind"] == "regression" and not r["fixed_by"] for r in found)
    return 1 if open_found else 0


@click.group("regressions", invoke_without_command=True)
@click.option(
    "--state", type=click.Choice([*REGRESSION_STATES, "all"]), default="open", show_default=True
)
@global_options
@click.pass_context
def regressions_group(
    ctx: click.Context, state: str, db: str | None, results: Path | None, as_json: bool
) -> int:
    """List detected regressions (`commitbench regressions ack ID` acknowledges one)."""
    if ctx.invoked_subcommand is not None:
        return 0
    g = globals_from(db, results, as_json)
    engine = open_engine(require_db(g))
    try:
        rows = table.listed(engine, None if state == "all" else state)
    finally:
        engine.dispose()
    if g.json:
        emit_json([r.__dict__ for r in rows])
        return 0
    out = Table(
        "id",
        "case",
        "metric",
        "machine",
        "branch",
        "commit",
        "change",
        "state",
        "detected",
        title=plural(len(rows), f"{state} regression"),
    )
    for r in rows:
        out.add_row(
            str(r.id),
            Text(printable(r.case)),
            r.metric,
            Text(r.machine),
            r.branch or "",
            f"{r.sha[:12]} {r.subject or ''}"[:60],
            f"{r.change_pct:+.1f}%",
            r.state,
            r.detected_at.strftime("%Y-%m-%d %H:%M"),
        )
    stdout.print(out)
    return 0


@regressions_group.command("ack")
@click.argument("regression_id", type=int, metavar="ID")
@global_options
def ack_command(regression_id: int, db: str | None, results: Path | None, as_json: bool) -> int:
    """Acknowledge regression ID: seen, and not to be alerted on again."""
    g = globals_from(db, results, as_json)
    engine = open_engine(require_db(g))
    try:
        table.acknowledge(engine, regression_id)
    finally:
        engine.dispose()
    if g.json:
        emit_json({"id": regression_id, "state": "acknowledged"})
    else:
        say(f"regression {regression_id} acknowledged")
    return 0
