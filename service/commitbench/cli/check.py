"""`commitbench check [BASE] [HEAD]`: the CI gate (analysis.gate.check decides).

For a pull request BASE defaults to the merge base of HEAD with the target branch
(--target, else $GITHUB_BASE_REF, else main).
"""

from __future__ import annotations

from pathlib import Path

import click

from commitbench.analysis import gate
from commitbench.analysis.reachable import unreachable, unreachable_line
from commitbench.cli import explaining
from commitbench.cli.common import (
    affinity_from,
    affinity_option,
    emit_json,
    global_options,
    globals_from,
    info,
    max_processes_option,
    param_option,
    params_from,
    pass_env_option,
    policies_from,
    processes_option,
    profile_option,
    say,
    timeout_option,
    warn,
)
from commitbench.cli.compare import markdown_option, policy_options, show, timed
from commitbench.cli.measuring import measuring
from commitbench.cli.profiles import trace_iterations, trace_option
from commitbench.cli.tables import rows_json
from commitbench.errors import CommitbenchError
from commitbench.model.words import plural
from commitbench.runner.environ import check_pass_env
from commitbench.runner.options import RunOptions
from commitbench.runner.profiles import explain_cases
from commitbench.runner.vcs import Repository, RevSpec


@click.command("check")
@click.argument("base", required=False)
@click.argument("head", required=False)
@click.option(
    "--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
)
@click.option(
    "--target",
    metavar="BRANCH",
    help="Branch a pull request merges into [default: $GITHUB_BASE_REF or main].",
)
@click.option("--benches", metavar="PATH", help="As for `run`.")
@click.option("--filter", "pattern", metavar="PATTERN", help="As for `run`.")
@profile_option
@timeout_option
@click.option("--setup", metavar="CMD", help="As for `run`.")
@pass_env_option
@param_option
@affinity_option
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=gate.DEFAULT_PROCESSES,
    show_default=True,
    help="Interleaved BASE/HEAD re-measurements (one fresh process per side each, at "
    "least --processes) that confirm a regression.",
)
@processes_option(gate.DEFAULT_PROCESSES)
@max_processes_option
@markdown_option
@policy_options
@trace_option
@global_options
def check_command(
    base: str | None,
    head: str | None,
    repo: Path,
    target: str | None,
    benches: str | None,
    pattern: str | None,
    profile: str,
    timeout: float,
    setup: str | None,
    pass_env: tuple[str, ...],
    params: tuple[str, ...],
    affinity: str | None,
    rounds: int,
    processes: int,
    max_processes: int,
    as_markdown: bool,
    policy: str | None,
    thresholds: tuple[str, ...],
    alpha: float,
    trace: bool,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Fail a build only on a regression confirmed by interleaved re-measurement."""
    g = globals_from(db, results, as_json)
    passed = check_pass_env(pass_env)
    swept = params_from(params)
    pinned = affinity_from(affinity)
    policies = policies_from(policy, thresholds)  # bad policies fail before anything runs
    repository = Repository(repo)
    h = repository.sha(head or "HEAD")
    b = repository.sha(base) if base else repository.pr_base(h, target)
    if b == h:
        raise CommitbenchError(f"BASE and HEAD are the same commit {h[:12]}")
    options = RunOptions(
        repo=repo,
        revs=RevSpec((b, h)),
        benches=benches,
        filter=pattern,
        profile=profile,
        timeout_s=timeout,
        setup=setup,
        trigger="ci",
        pass_env=passed,
        params=swept,
        affinity=pinned,
        trace=trace_iterations(trace),
    )
    with measuring(g, options) as (lab, store):
        result = gate.check(
            lab,
            b,
            h,
            policies,
            alpha=alpha,
            rounds=rounds,
            processes=processes,
            max_processes=max_processes,
            progress=info if not g.json else lambda _: None,
        )
        # Why each confirmed regression happened, from the profiles (check --trace, or an
        # earlier run --trace) at both commits.
        why = explain_cases(store, repository.id, b, h, [r.case for r in result.confirmed])
    title = f"{b[:12]} → {h[:12]}"
    if g.json:
        emit_json(
            {
                "base": b,
                "head": h,
                "rows": rows_json(timed(result.rows)),
                "confirmation": rows_json(result.confirmation),
                "confirmed": rows_json(result.confirmed),
                "explain": [explaining.explained_json(e, b, h) for e in why],
                "exit": result.exit_code,
            }
        )
    else:
        show(timed(result.rows), title, as_markdown=as_markdown, as_json=False)
        if result.suspects:
            show(
                result.confirmation,
                f"confirmation, {plural(max(rounds, processes), 'interleaved round')}",
                as_markdown=as_markdown,
                as_json=False,
                every_row=True,  # an unconfirmed suspect shows why: its fresh samples
            )
        explaining.show_all(why, b, h, as_markdown=as_markdown)
        say(f"check {title}: {result.summary}")
    line = unreachable_line(
        unreachable(
            [
                (
                    r.case,
                    r.metric,
                    r.comparison.spread,
                    min(r.comparison.processes_base, r.comparison.processes_head),
                )
                for r in result.rows
                if r.comparison.spread is not None
            ],
            policies,
            alpha=alpha,
        )
    )
    if line is not None:
        warn(line)
    return result.exit_code
