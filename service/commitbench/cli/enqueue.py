"""`commitbench enqueue REVS | --follow BRANCH`: put commits on the fleet's job queue."""

from __future__ import annotations

from pathlib import Path

import click

from commitbench.cli.common import (
    emit_json,
    global_options,
    globals_from,
    param_option,
    params_from,
    profile_option,
    require_db,
    rev_spec,
    say,
    timeout_option,
)
from commitbench.errors import ConfigError
from commitbench.fleet.enqueue import enqueue_revs, follow, open_source
from commitbench.fleet.kinds import MachineKind
from commitbench.fleet.queue import JobSpec
from commitbench.fleet.repos import default_cache
from commitbench.model.records import TRIGGERS
from commitbench.model.words import plural
from commitbench.store import open_engine


@click.command("enqueue")
@click.argument("revs", nargs=-1)
@click.option(
    "--repo",
    default=".",
    show_default=True,
    help="The git repository: a local path, or a URL runners can fetch from.",
)
@click.option(
    "--follow",
    "follow_branch",
    metavar="BRANCH",
    help="Enqueue every commit of BRANCH after the last one enqueued for it "
    "(the first time: its tip, or --max-count newest). For cron.",
)
@click.option("--benches", metavar="PATH", help="Bench directory [default: the built-in suite].")
@click.option("--filter", "pattern", metavar="PATTERN", help="Only cases matching PATTERN.")
@param_option
@profile_option
@click.option(
    "--machine-kind",
    "kind",
    default="any",
    show_default=True,
    help="Runners that may take the jobs: any, gpu, or a GPU model (H100), "
    "with xN for at least N GPUs (H100x8).",
)
@timeout_option
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Attempts (errors, dead runners) before a job is parked.",
)
@click.option("--branch", help="Branch to record [default: the --follow branch].")
@click.option(
    "--trigger", type=click.Choice(TRIGGERS), help="[default: cron with --follow, else manual]"
)
@click.option("--since", metavar="DATE", help="Only commits after DATE (walks history).")
@click.option(
    "--max-count", type=click.IntRange(min=1), metavar="N", help="At most the N newest commits."
)
@click.option(
    "--first-parent",
    is_flag=True,
    help="Follow only the first parent of merges (always on with --follow).",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where clones of remote repositories live [default: ~/.cache/commitbench/repos].",
)
@global_options
def enqueue_command(
    revs: tuple[str, ...],
    repo: str,
    follow_branch: str | None,
    benches: str | None,
    pattern: str | None,
    params: tuple[str, ...],
    profile: str,
    kind: str,
    timeout: float,
    max_attempts: int,
    branch: str | None,
    trigger: str | None,
    since: str | None,
    max_count: int | None,
    first_parent: bool,
    cache: Path | None,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Record jobs for REVS (shas, branches, tags, A..B) on the queue, once each:
    enqueueing the same work again (in any state) adds nothing."""
    g = globals_from(db, results, as_json)
    if follow_branch is not None and revs:
        raise ConfigError("give REVS or --follow BRANCH, not both")
    if follow_branch is None and not revs:
        raise ConfigError("nothing to enqueue: give REVS or --follow BRANCH")
    # --follow always walks the branch first-parent; REVS walk only with a range or filter.
    spec_revs = rev_spec(revs, since, max_count, first_parent and follow_branch is None)
    spec = JobSpec(
        repository=repo,
        benches=benches,
        filter=pattern,
        profile=profile,
        kind=MachineKind.parse(kind),
        branch=branch or follow_branch,
        trigger=trigger or ("cron" if follow_branch else "manual"),
        timeout_s=timeout,
        max_attempts=max_attempts,
        params=params_from(params),
    )
    engine = open_engine(require_db(g))
    try:
        source = open_source(repo, cache or default_cache())
        if follow_branch is not None:
            jobs = follow(engine, source, spec, max_count=max_count)
        else:
            jobs = enqueue_revs(engine, source, spec_revs, spec)
    finally:
        engine.dispose()
    new = sum(j.new for j in jobs)
    if g.json:
        emit_json(
            {
                "repository": source.name,
                "jobs": [{"id": j.id, "sha": j.sha, "new": j.new} for j in jobs],
                "new": new,
            }
        )
    else:
        for j in jobs:
            say(f"  job {j.id}: {j.sha[:12]}{'' if j.new else ' (already queued)'}")
        say(f"{plural(new, 'job')} enqueued, {len(jobs) - new} already queued: {source.name}")
    return 0
