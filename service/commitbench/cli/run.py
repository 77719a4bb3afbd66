"""`commitbench run [REVS...]`: measure commits of a repository and record the results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from commitbench.analysis.reachable import result_spreads, unreachable, unreachable_line
from commitbench.cli.common import (
    affinity_from,
    affinity_option,
    emit_json,
    global_options,
    globals_from,
    param_option,
    params_from,
    pass_env_option,
    policies_from,
    processes_option,
    profile_option,
    rev_spec,
    say,
    stderr,
    stdout,
    timeout_option,
    warn,
)
from commitbench.cli.profiles import trace_iterations, trace_option
from commitbench.cli.progress import (
    Lines,
    Live,
    Quiet,
    failure_line,
    failure_site,
    headline_metric,
    summary,
    used_of,
)
from commitbench.errors import ConfigError
from commitbench.model.records import TRIGGERS, ResultRecord
from commitbench.model.text import printable
from commitbench.model.words import plural
from commitbench.runner import nsys
from commitbench.runner.environ import check_pass_env
from commitbench.runner.options import BROKEN, CommitOutcome, RunOptions
from commitbench.runner.runner import Runner
from commitbench.runner.vcs import Repository
from commitbench.store import open_store


@click.command("run")
@click.argument("revs", nargs=-1)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The git repository to measure.",
)
@click.option(
    "--benches",
    metavar="PATH",
    help="Bench directory, or one bench module (a .py file, run as the module named after "
    "it): relative to each checked-out commit, or absolute [default: the built-in suite].",
)
@click.option(
    "--filter",
    "pattern",
    metavar="PATTERN",
    help="Only cases whose id contains PATTERN (or matches it as a glob).",
)
@profile_option
@timeout_option
@click.option(
    "--setup",
    metavar="CMD",
    help="Shell command run in each commit's worktree first (e.g. pip install -e .).",
)
@pass_env_option
@param_option
@click.option(
    "--pythonpath",
    multiple=True,
    metavar="DIR",
    help="Put DIR (relative to the worktree) on the workers' path [default: the "
    "worktree root and its src/].",
)
@click.option(
    "--force",
    is_flag=True,
    help="Measure every selected case again, recorded or not, as a new run (earlier "
    "results are kept).",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Measure again only the cases whose latest recorded result failed, timed out or "
    "crashed (the others recorded stay skipped).",
)
@click.option(
    "--branch",
    help="Branch to record [default: the branch the REVS name (main, origin/main, A..main); "
    "none for tags and shas; the checked-out one with no REVS].",
)
@click.option("--trigger", type=click.Choice(TRIGGERS), default="manual", show_default=True)
@click.option("--since", metavar="DATE", help="Only commits after DATE (walks history).")
@click.option(
    "--max-count",
    type=click.IntRange(min=1),
    metavar="N",
    help="At most the N newest commits (walks history).",
)
@click.option("--first-parent", is_flag=True, help="Follow only the first parent of merges.")
@click.option(
    "--quick",
    is_flag=True,
    help="Run each timed loop once, without warm-up, to check that the benches work; "
    "nothing is recorded.",
)
@click.option(
    "--isolate",
    type=click.Choice(["module", "case"]),
    default="module",
    show_default=True,
    help="One worker per bench module, or per case.",
)
@processes_option(1)
@affinity_option
@trace_option
@click.option(
    "--nsys",
    "under_nsys",
    is_flag=True,
    help="Run each measuring worker under `nsys profile` (Nsight Systems, on PATH): one "
    "report per worker in nsys/ of the run's folder; cases show by name (NVTX). nsys costs "
    "time: use it to look, not to measure.",
)
@global_options
def run_command(
    revs: tuple[str, ...],
    repo: Path,
    benches: str | None,
    pattern: str | None,
    profile: str,
    timeout: float,
    setup: str | None,
    pass_env: tuple[str, ...],
    params: tuple[str, ...],
    pythonpath: tuple[str, ...],
    force: bool,
    retry_failed: bool,
    branch: str | None,
    trigger: str,
    since: str | None,
    max_count: int | None,
    first_parent: bool,
    quick: bool,
    isolate: str,
    processes: int,
    affinity: str | None,
    trace: bool,
    under_nsys: bool,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Measure commits (REVS: shas, branches, tags, A..B; default HEAD) and record them.

    Each commit is checked out in its own temporary worktree; your working tree, index and
    HEAD are never touched. Cases already recorded for the commit, machine and profile are
    skipped unless --force (or --retry-failed, for those that failed). Exit 0 when every
    case is ok or skipped, 1 when one failed, crashed or timed out (or results had to be
    spooled to CSV), 2 on bad input.
    """
    g = globals_from(db, results, as_json)
    passed = check_pass_env(pass_env)
    swept = params_from(params)
    pinned = affinity_from(affinity)
    policies = policies_from(None, ())  # for the noise warning; a bad one fails here
    if force and retry_failed:
        raise ConfigError("give --force (every case) or --retry-failed (failed ones), not both")
    if under_nsys and quick:
        raise ConfigError("give --nsys or --quick (which records nothing), not both")
    nsys_path = nsys.find() if under_nsys else None
    spec = rev_spec(revs, since, max_count, first_parent)
    if branch is None:
        branch = Repository(repo).branch_named(revs)
    options = RunOptions(
        repo=repo,
        revs=spec,
        benches=benches,
        filter=pattern,
        profile=profile,
        timeout_s=timeout,
        setup=setup,
        pythonpath=pythonpath or None,
        force=force,
        retry_failed=retry_failed,
        branch=branch,
        trigger=trigger,
        isolate=isolate,
        processes=processes,
        quick=quick,
        pass_env=passed,
        params=swept,
        affinity=pinned,
        trace=trace_iterations(trace),
        nsys=nsys_path,
    )
    live = Live(stderr) if sys.stderr.isatty() and not g.json else None
    events = Quiet() if g.json else live or Lines()
    store, engine = open_store(g.settings.db, g.settings.results, warn)
    try:
        runner = Runner(options, store, spool=g.settings.results if engine else None, events=events)
        shas = runner.plan()
        try:
            outcomes = runner.run(shas)
        finally:
            if live is not None:
                live.stop()
    finally:
        if engine is not None:
            engine.dispose()
    if pattern is not None and not any(o.matched or o.results for o in outcomes):
        where = benches or "the built-in suite"
        raise ConfigError(f"no case matches --filter {pattern!r} in {where}")
    code = report(
        outcomes, "nothing recorded (--quick)" if quick else store.location, as_json=g.json
    )
    measured = [r for o in outcomes for r in o.results]
    line = unreachable_line(unreachable(result_spreads(measured, policies, processes), policies))
    if line is not None:
        warn(line)
    return code


def report(outcomes: list[CommitOutcome], location: str, *, as_json: bool) -> int:
    broken = [r for o in outcomes for r in o.results if r.status in BROKEN]
    spooled = [o.spooled_to for o in outcomes if o.spooled_to is not None]
    unwritten = sum(len(o.unwritten) for o in outcomes)
    kept = sum(len(o.results) for o in outcomes) - unwritten
    code = 1 if broken or spooled or unwritten else 0
    if unwritten and not kept:
        code = 3  # nothing measured could be stored
    if as_json:
        emit_json(
            {"location": location, "exit": code, "commits": [_outcome_json(o) for o in outcomes]}
        )
    else:
        table = summary(outcomes)
        if table is not None:
            stdout.print(table)
        measured = sum(len(o.results) for o in outcomes)
        say(
            f"{plural(measured, 'result')} for {plural(len(outcomes), 'commit')}: {location}"
            f"; {_recorded_before(outcomes)}, {len(broken)} failed now"
        )
        for r in broken:
            say(f"  {failure_line(r)}")
        for o in outcomes:
            if o.recorded_elsewhere:
                say(
                    f"  {o.commit.sha[:12]}: "
                    f"{plural(len(o.recorded_elsewhere), 'case')} already recorded by another "
                    f"run meanwhile, not recorded again: "
                    f"{', '.join(map(printable, o.recorded_elsewhere))}"
                )
        failed_before = sum(o.recorded_failed for o in outcomes)
        if failed_before:
            say(
                f"  {plural(failed_before, 'recorded case')} failed before and "
                f"{'was' if failed_before == 1 else 'were'} not measured again: "
                f"--retry-failed measures {'it' if failed_before == 1 else 'them'} again, "
                "--force every case"
            )
    for o in outcomes:
        if o.unwritten:
            warn(
                f"could not write {plural(len(o.unwritten), 'result')} of "
                f"{o.commit.sha[:12]}: {o.storage_error}; measured but not recorded: "
                f"{', '.join(printable(r.case.label) for r in o.unwritten)}"
            )
    for folder in spooled:
        warn(
            f"the database was lost (or refused writes) mid-run; the rest of the run is in "
            f"{folder}. When the database is back, load it with: commitbench import {folder}"
        )
    return code


def _recorded_before(outcomes: list[CommitOutcome]) -> str:
    kept = sum(o.already_recorded for o in outcomes)
    failed = sum(o.recorded_failed for o in outcomes)
    return f"{kept} already recorded" + (f" ({failed} of them failed)" if failed else "")


def _outcome_json(o: CommitOutcome) -> dict[str, Any]:
    return {
        "sha": o.commit.sha,
        "subject": o.commit.subject,
        "run_id": str(o.run_id) if o.run_id else None,
        "already_recorded": o.already_recorded,
        "recorded_failed": o.recorded_failed,
        "recorded_elsewhere": o.recorded_elsewhere,
        "unwritten": [r.case.label for r in o.unwritten],
        "storage_error": o.storage_error,
        "spooled_to": str(o.spooled_to) if o.spooled_to else None,
        "results": [_result_json(r) for r in o.results],
    }


def _result_json(r: ResultRecord) -> dict[str, Any]:
    metric = headline_metric(r)
    return {
        "case": r.case.label,
        "status": r.status,
        "error": r.error,
        "failure_site": failure_site(r.error),
        "metric": metric.name if metric is not None else None,
        "median": metric.median if metric is not None else None,
        "unit": metric.unit if metric is not None else None,
        "used": dict(used_of(r)),
    }
