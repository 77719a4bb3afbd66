"""`commitbench doctor`: the machine's state, a noise estimate and what to change."""

from __future__ import annotations

from pathlib import Path

import click

from commitbench.cli.common import (
    affinity_from,
    affinity_option,
    emit_json,
    global_options,
    globals_from,
    info,
    policies_from,
)
from commitbench.runner.diagnosis import Diagnosis
from commitbench.runner.doctor import diagnose


def render(d: Diagnosis, processes: int) -> str:
    pinned = f"; pinned to CPUs {d.affinity}" if d.affinity is not None else ""
    lines = [
        f"commitbench doctor: {d.seconds:g} s of loops in {processes} processes; "
        f"minimum effect {d.min_effect_pct:g}%{pinned}",
        "",
        f"{'loop':10} {'processes':>9} {'median':>12} {'within':>8} {'between':>8}  on CPUs",
    ]
    for loop in d.loops:
        row = loop.as_json()
        median = row["median_s"] * 1e3
        within = "" if loop.within_pct is None else f"±{loop.within_pct:.2f}%"
        between = "" if loop.between_pct is None else f"{loop.between_pct:.2f}%"
        where = ",".join("?" if c is None else str(c) for c in loop.cpus)
        lines.append(
            f"{loop.name:10} {len(loop.medians):>9} {median:>9.4g} ms {within:>8} {between:>8}"
            f"  {where}"
        )
    if d.calibration_spread_pct is not None:
        lines.append(f"calibration spread between processes: {d.calibration_spread_pct:.2f}%")
    lines.append("")
    for f in d.findings:
        lines.append(f"{f.level:5} {f.text}")
        if f.advice:
            lines.append(f"      -> {f.advice}")
    verdict = "supports" if d.supported else "cannot support"
    lines += ["", f"this machine {verdict} a minimum effect of {d.min_effect_pct:g}%"]
    return "\n".join(lines) + "\n"


@click.command("doctor")
@click.option(
    "--seconds",
    type=click.FloatRange(0.1, 3600),
    default=10.0,
    show_default=True,
    help="Time spent in the timed loops, over all processes.",
)
@click.option(
    "--processes",
    type=click.IntRange(2, 64),
    default=4,
    show_default=True,
    help="Fresh worker processes, one after another, each timing every loop.",
)
@click.option(
    "--policy",
    metavar="STAT:N%",
    help="Minimum effect to check against [default: [tool.commitbench] policy, or median:5%].",
)
@affinity_option
@global_options
def doctor_command(
    seconds: float,
    processes: int,
    policy: str | None,
    affinity: str | None,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Check the machine: its state, a CPU jitter loop and, with a GPU, launch and matmul
    loops in fresh processes; print a noise estimate and what to change. Exit 1 when the
    noise between processes is not below the policy's minimum effect."""
    g = globals_from(db, results, as_json)
    min_effect = policies_from(policy, ()).default.threshold
    d = diagnose(
        seconds=seconds,
        processes=processes,
        min_effect=min_effect,
        affinity=affinity_from(affinity),
        progress=info,
    )
    if g.json:
        emit_json(d.as_json())
    else:
        click.echo(render(d, processes), nl=False)
    return 0 if d.supported else 1
