"""`commitbench bisect GOOD BAD --case ID`: name the first commit of a step."""

from __future__ import annotations

from pathlib import Path

import click

from commitbench.analysis import bisect as search
from commitbench.analysis.compare import compare
from commitbench.cli.common import (
    emit_json,
    global_options,
    globals_from,
    info,
    profile_option,
    timeout_option,
    warn,
)
from commitbench.cli.progress import Quiet, fmt_value
from commitbench.errors import CommitbenchError
from commitbench.runner import Runner, RunOptions
from commitbench.stats import Stats
from commitbench.store import Store, history, open_store
from commitbench.store.csv import CsvStore
from commitbench.store.sql import SqlStore
from commitbench.vcs import Repository, RevSpec


class Measurer:
    """Measures one case at a commit (only if missing) and reads its pooled samples."""

    def __init__(
        self, runner: Runner, store: Store, repo: Repository, case: str, metric: str | None
    ) -> None:
        if not isinstance(store, SqlStore | CsvStore):
            raise TypeError("bisect reads from PostgreSQL or CSV results")
        self.runner, self.store, self.repo = runner, store, repo
        self.case, self.metric = case, metric
        self.unit = ""

    def samples(self, sha: str) -> list[float]:
        self.runner.run([sha])
        host = self.runner.host
        assert host is not None  # noqa: S101 - set by run()
        points = [
            p
            for p in history.load(
                self.store,
                history.Filter(
                    repository=self.repo.id, shas=[sha], case=self.case, machine=host.fingerprint
                ),
            )
            if p.profile == self.runner.profile
        ]
        if self.metric is None:
            names = [p.metric for p in points]
            if not names:
                raise CommitbenchError(f"{self.case} has no ok result at {sha[:12]}")
            self.metric = "time" if "time" in names else names[0]
        chosen = [p for p in points if p.metric == self.metric]
        if not chosen:
            raise CommitbenchError(f"{self.case} has no metric {self.metric!r} at {sha[:12]}")
        self.unit = chosen[0].unit
        return [x for p in chosen for x in p.samples]

    def value(self, sha: str) -> float:
        return Stats.of(self.samples(sha)).median


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
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Binary search over the first-parent commits between GOOD and BAD, measuring only
    what is missing, for the first commit where CASE's metric stepped."""
    g = globals_from(db, results, as_json)
    repository = Repository(repo)
    g_sha, b_sha = repository.sha(good), repository.sha(bad)
    candidates = repository.resolve(RevSpec((f"{g_sha}..{b_sha}",), first_parent=True))
    if not candidates or candidates[-1] != b_sha:
        raise CommitbenchError(f"{bad} is not a first-parent descendant of {good}")
    options = RunOptions(
        repo=repo,
        revs=RevSpec((b_sha,)),
        benches=benches,
        profile=profile,
        timeout_s=timeout,
        setup=setup,
        cases=frozenset({case}),
    )
    store, engine = open_store(g.settings.db, g.settings.results, warn)
    try:
        runner = Runner(
            options, store, spool=g.settings.results if engine else None, events=Quiet()
        )
        m = Measurer(runner, store, repository, case, metric)
        base, head = m.samples(g_sha), m.samples(b_sha)
        # Only whether there is a step matters here, not its sign: direction is moot.
        step = compare(base, head, direction="lower")
        if step.verdict in ("unchanged", "noisy"):
            raise CommitbenchError(
                f"{case} {m.metric}: {good} and {bad} differ by {step.change * 100:+.1f}% "
                f"({step.verdict}); there is no step to bisect"
            )
        vg, vb = step.base, step.head
        if not g.json:
            info(
                f"{case} {m.metric}: {fmt_value(vg, m.unit)} at {g_sha[:12]} → "
                f"{fmt_value(vb, m.unit)} at {b_sha[:12]}; {len(candidates)} first-parent "
                f"commits, about {search.steps_needed(len(candidates))} to measure"
            )

        def measure(i: int) -> float:
            value = m.value(candidates[i])
            if not g.json:
                info(f"  {candidates[i][:12]} {fmt_value(value, m.unit)}")
            return value

        first, probes = search.bisect(len(candidates), vg, vb, measure)
    finally:
        if engine is not None:
            engine.dispose()
    culprit = repository.commit_info(candidates[first])
    if g.json:
        emit_json(
            {
                "case": case,
                "metric": m.metric,
                "good": g_sha,
                "bad": b_sha,
                "first_bad": culprit.sha,
                "subject": culprit.subject,
                "good_value": vg,
                "bad_value": vb,
                "probes": [
                    {"sha": candidates[p.index], "value": p.value, "side": p.side} for p in probes
                ],
            }
        )
    else:
        click.echo(f"first bad commit: {culprit.sha} {culprit.subject or ''}")
    return 0
