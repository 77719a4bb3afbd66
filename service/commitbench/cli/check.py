"""`commitbench check [BASE] [HEAD]`: the CI gate.

1. Measure what is missing at BASE and HEAD (recorded work is reused).
2. Compare. Nothing regressed: exit 0.
3. Otherwise re-measure only the regressed cases, BASE and HEAD interleaved
   (A B A B ...), on this machine, and compare those fresh samples alone: a regression
   that was machine drift, a noisy neighbour or an unlucky first run does not survive
   interleaving. Exit 1 only when a regression is confirmed.

For a pull request BASE defaults to the merge base of HEAD with the target branch
(--target, else $GITHUB_BASE_REF, else main).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import click

from commitbench.analysis.compare import Row, Sample, compare_sets
from commitbench.cli.common import (
    emit_json,
    global_options,
    globals_from,
    info,
    policies_from,
    profile_option,
    timeout_option,
    warn,
)
from commitbench.cli.compare import load_rows, markdown_option, policy_options, show
from commitbench.cli.progress import Quiet
from commitbench.cli.tables import rows_json
from commitbench.errors import CommitbenchError
from commitbench.records import ResultRecord
from commitbench.runner import Runner, RunOptions
from commitbench.store import open_store
from commitbench.store.csv import CsvStore
from commitbench.store.history import machine_label
from commitbench.store.sql import SqlStore
from commitbench.vcs import Repository, RevSpec


def default_base(repo: Repository, head: str, target: str | None) -> str:
    """The merge base of HEAD with the target branch (origin/<target> when it exists)."""
    target = target or os.environ.get("GITHUB_BASE_REF") or "main"
    for candidate in (f"origin/{target}", target):
        try:
            return repo.merge_base(candidate, head)
        except CommitbenchError:
            continue
    raise CommitbenchError(
        f"no target branch {target!r} (nor origin/{target}) to take the "
        "merge base with; pass BASE or --target"
    )


def fresh_samples(
    results: Sequence[ResultRecord], fingerprint: str, label: str, profile: str
) -> list[Sample]:
    return [
        Sample(
            fingerprint, label, profile, r.case.label, m.name, m.unit, m.direction, m.samples or ()
        )
        for r in results
        if r.status == "ok"
        for m in r.metrics
    ]


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
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Interleaved BASE/HEAD re-measurements that confirm a regression.",
)
@markdown_option
@policy_options
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
    rounds: int,
    as_markdown: bool,
    policy: str | None,
    thresholds: tuple[str, ...],
    alpha: float,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Fail a build only on a regression confirmed by interleaved re-measurement."""
    g = globals_from(db, results, as_json)
    policies_from(policy, thresholds)  # bad policies fail before anything is measured
    repository = Repository(repo)
    h = repository.sha(head or "HEAD")
    b = repository.sha(base) if base else default_base(repository, h, target)
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
    )
    store, engine = open_store(g.settings.db, g.settings.results, warn)
    try:
        runner = Runner(
            options, store, spool=g.settings.results if engine else None, events=Quiet()
        )
        if not g.json:
            info(f"measuring {b[:12]} (base) and {h[:12]} (head)")
        runner.run(runner.plan())
        assert isinstance(store, SqlStore | CsvStore)  # noqa: S101 - what open_store makes
        rows = load_rows(store, repository, b, h, policy, thresholds, alpha)
        suspects = [r for r in rows if r.comparison.verdict == "regressed"]
        confirmed: list[Row] = []
        if suspects:
            confirmed = confirm(
                runner, options, suspects, b, h, rounds, policy, thresholds, alpha, quiet=g.json
            )
    finally:
        if engine is not None:
            engine.dispose()
    title = f"{b[:12]} → {h[:12]}"
    if g.json:
        emit_json(
            {
                "base": b,
                "head": h,
                "rows": rows_json(rows),
                "confirmed": rows_json(confirmed),
                "exit": 1 if confirmed else 0,
            }
        )
    else:
        show(rows, title, as_markdown=as_markdown, as_json=False)
        if suspects:
            show(
                confirmed or [],
                f"confirmation, {rounds} interleaved round(s)",
                as_markdown=as_markdown,
                as_json=False,
            )
        verdict = (
            f"{len(confirmed)} regression(s) confirmed"
            if confirmed
            else f"no confirmed regression ({len(suspects)} not confirmed)"
            if suspects
            else "no regression"
        )
        info(f"check {title}: {verdict}")
    return 1 if confirmed else 0


def confirm(
    runner: Runner,
    options: RunOptions,
    suspects: Sequence[Row],
    base: str,
    head: str,
    rounds: int,
    policy: str | None,
    thresholds: tuple[str, ...],
    alpha: float,
    *,
    quiet: bool,
) -> list[Row]:
    """Re-measure the suspect cases A B A B ... and keep what regresses again."""
    runner.options = replace(options, force=True, cases=frozenset(r.case for r in suspects))
    fresh: dict[str, list[ResultRecord]] = {base: [], head: []}
    for i in range(rounds):
        for sha in (base, head):
            if not quiet:
                info(f"confirming: round {i + 1}/{rounds}, {sha[:12]}")
            (outcome,) = runner.run([sha])
            fresh[sha] += outcome.results
    host, profile = runner.host, runner.profile
    assert host is not None and profile is not None  # noqa: S101 - set by run()
    label = machine_label(host.gpu_name, host.gpu_count, host.cpu_model)
    again = compare_sets(
        fresh_samples(fresh[base], host.fingerprint, label, profile),
        fresh_samples(fresh[head], host.fingerprint, label, profile),
        policies_from(policy, thresholds),
        alpha=alpha,
    )
    wanted = {(r.case, r.metric) for r in suspects}
    return [
        r for r in again if (r.case, r.metric) in wanted and r.comparison.verdict == "regressed"
    ]
