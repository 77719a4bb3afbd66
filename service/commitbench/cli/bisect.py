"""`commitbench bisect GOOD BAD --case ID`: name the first commit of a step."""

from __future__ import annotations

from pathlib import Path

import click

from commitbench.analysis import bisecting, gate
from commitbench.cli.common import (
    affinity_from,
    affinity_option,
    emit_json,
    global_options,
    globals_from,
    info,
    param_option,
    params_from,
    pass_env_option,
    policies_from,
    processes_option,
    profile_option,
    timeout_option,
)
from commitbench.cli.measuring import measuring
from commitbench.cli.profiles import trace_iterations, trace_option
from commitbench.cli.progress import fmt_value
from commitbench.runner.environ import check_pass_env
from commitbench.runner.options import RunOptions
from commitbench.runner.vcs import Repository, RevSpec


@click.command("bisect")
@click.argument("good")
@click.argument("bad")
@click.option("--case", "case", required=True, metavar="ID", help="The case id that stepped.")
@click.option("--metric", metavar="NAME", help="The metric [default: time, or the first].")
@click.option(
    "--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
)
@click.option("--benches", metavar="PATH", help="As for `run`.")
@profile_option
@timeout_option
@click.option("--setup", metavar="CMD", help="As for `run`.")
@pass_env_option
@param_option
@processes_option(gate.DEFAULT_PROCESSES)
@affinity_option
@click.option(
    "--policy",
    metavar="STAT:N%",
    help="Minimum step [default: [tool.commitbench] policy, or median:5%].",
)
@trace_option
@global_options
def bisect_command(
    good: str,
    bad: str,
    case: str,
    metric: str | None,
    repo: Path,
    benches: str | None,
    profile: str,
    timeout: float,
    setup: str | None,
    pass_env: tuple[str, ...],
    params: tuple[str, ...],
    processes: int,
    affinity: str | None,
    policy: str | None,
    trace: bool,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Binary search over the first-parent commits between GOOD and BAD for the first
    commit where CASE's metric stepped: both ends measured again interleaved first, each
    probe in --processes fresh processes; exit 1 when a probe cannot be placed."""
    g = globals_from(db, results, as_json)
    passed = check_pass_env(pass_env)
    swept = params_from(params)
    repository = Repository(repo)
    g_sha, b_sha = repository.sha(good), repository.sha(bad)
    candidates = repository.resolve(RevSpec((f"{g_sha}..{b_sha}",), first_parent=True))
    options = RunOptions(
        repo=repo,
        revs=RevSpec((b_sha,)),
        benches=benches,
        profile=profile,
        timeout_s=timeout,
        setup=setup,
        cases=frozenset({case}),
        pass_env=passed,
        params=swept,
        affinity=affinity_from(affinity),
        trace=trace_iterations(trace),
    )
    with measuring(g, options) as (lab, _):
        found = bisecting.bisect(
            lab,
            g_sha,
            b_sha,
            candidates,
            case,
            metric,
            processes=processes,
            policy=policies_from(policy, ()).for_case(case),
            progress=info if not g.json else lambda _: None,
            describe=fmt_value,
        )
    if found.first_bad is None:
        if g.json:
            emit_json(
                {
                    "case": case,
                    "metric": found.metric,
                    "good": g_sha,
                    "bad": b_sha,
                    "first_bad": None,
                    "stopped": found.stopped,
                    "probes": _probes(found, candidates),
                }
            )
        else:
            click.echo(f"bisect stopped: {found.stopped}")
        return 1
    culprit = repository.commit_info(found.first_bad)
    if g.json:
        emit_json(
            {
                "case": case,
                "metric": found.metric,
                "good": g_sha,
                "bad": b_sha,
                "first_bad": culprit.sha,
                "subject": culprit.subject,
                "good_value": found.step.base,
                "bad_value": found.step.head,
                "probes": _probes(found, candidates),
            }
        )
    else:
        click.echo(f"first bad commit: {culprit.sha} {culprit.subject or ''}")
    return 0


def _probes(found: bisecting.BisectResult, candidates: list[str]) -> list[dict[str, object]]:
    return [{"sha": candidates[p.index], "value": p.value, "side": p.side} for p in found.probes]
