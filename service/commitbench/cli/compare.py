"""`commitbench compare BASE HEAD`: what changed between two measured commits; with
`--measure`, both measured now, interleaved at the process level (analysis.gate)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from commitbench.analysis import gate
from commitbench.analysis.compare import DEFAULT_ALPHA, Row, compare_commits
from commitbench.analysis.history import priors
from commitbench.analysis.machinestate import CaseState, case_states
from commitbench.cli.common import (
    affinity_from,
    affinity_option,
    check_metrics,
    emit_json,
    global_options,
    globals_from,
    info,
    max_processes_option,
    open_reading_store,
    param_option,
    params_from,
    pass_env_option,
    policies_from,
    processes_option,
    profile_option,
    stdout,
    timeout_option,
)
from commitbench.cli.measuring import measuring
from commitbench.cli.tables import markdown, rich_table, rows_json
from commitbench.errors import CommitbenchError, ConfigError
from commitbench.model.points import Point, PointFilter
from commitbench.model.profile import is_profile
from commitbench.model.text import printable
from commitbench.runner.environ import check_pass_env
from commitbench.runner.options import RunOptions
from commitbench.runner.vcs import Repository, RevSpec
from commitbench.store import ReadStore

F = TypeVar("F", bound=Callable[..., Any])


def policy_options(fn: F) -> F:
    fn = click.option(
        "--alpha",
        type=click.FloatRange(0, 1, min_open=True),
        default=DEFAULT_ALPHA,
        show_default=True,
        help="Significance level of the test on per-process values (Welch's t).",
    )(fn)
    fn = click.option(
        "--threshold",
        "thresholds",
        multiple=True,
        metavar="PATTERN=POLICY",
        help="Per-case policy, e.g. 'matmul.*=median:3%' (repeatable).",
    )(fn)
    fn = click.option(
        "--policy",
        metavar="STAT:N%",
        help="Minimum effect [default: [tool.commitbench] policy, or median:5%].",
    )(fn)
    return fn


def markdown_option(fn: F) -> F:
    return click.option(
        "--markdown",
        "as_markdown",
        is_flag=True,
        help="Markdown for a PR comment or $GITHUB_STEP_SUMMARY.",
    )(fn)


def load_rows(
    store: ReadStore,
    repo: Repository,
    base: str,
    head: str,
    policy: str | None,
    thresholds: tuple[str, ...],
    alpha: float,
    metrics: tuple[str, ...] = (),
) -> list[Row]:
    where = PointFilter(repository=repo.id, shas=[base, head])
    policies = policies_from(policy, thresholds)
    points = store.points(where)
    rows = compare_commits(base, head, points, policies, alpha=alpha)
    # One process a side has no spread of its own: the case's history may give one
    # (analysis/history.py), read only for those cases.
    lonely = sorted(
        {
            r.case
            for r in rows
            if r.comparison.verdict == "ambiguous"
            and r.comparison.processes_base == r.comparison.processes_head == 1
        }
    )
    if lonely:
        past = [p for case in lonely for p in store.points(PointFilter(repo.id, case=case))]
        found = priors(past, policies)
        if found:
            rows = compare_commits(base, head, points, policies, alpha=alpha, priors=found)
    return _chosen(rows, metrics, base, head)


def _chosen(rows: list[Row], metrics: tuple[str, ...], base: str, head: str) -> list[Row]:
    if rows:
        check_metrics(metrics, (r.metric for r in rows), f"at both {base[:12]} and {head[:12]}")
    return [r for r in rows if r.metric in metrics] if metrics else timed(rows)


def timed(rows: list[Row]) -> list[Row]:
    """The rows shown unless asked for by name: not the `profile.*` ones, which say where
    the time went (`commitbench explain` reads them), one sample each."""
    return [r for r in rows if not is_profile(r.metric)]


def measure_rows(
    g: Any,
    repo: Path,
    base: str,
    head: str,
    policy: str | None,
    thresholds: tuple[str, ...],
    alpha: float,
    metrics: tuple[str, ...],
    run: dict[str, Any],
    processes: int,
    max_processes: int,
) -> tuple[list[Row], list[CaseState]]:
    """`--measure`: both commits measured now, interleaved, and compared alone; with
    the machine's state those processes recorded."""
    policies = policies_from(policy, thresholds)
    options = RunOptions(repo=repo, revs=RevSpec((base, head)), **run)
    with measuring(g, options) as (lab, _):
        kept = _Keeping(lab)
        rows = gate.measure_and_compare(
            kept,
            base,
            head,
            policies,
            alpha=alpha,
            processes=processes,
            max_processes=max_processes,
            progress=info if not g.json else lambda _: None,
        )
    return _chosen(rows, metrics, base, head), case_states(kept.points, order=(base, head))


class _Keeping:
    """A gate.Lab that keeps every point it measured (for the machine-state block)."""

    def __init__(self, lab: gate.Lab) -> None:
        self.lab = lab
        self.points: list[Point] = []

    def measure(
        self,
        sha: str,
        *,
        cases: frozenset[str] | None = None,
        again: bool = False,
        processes: int = 1,
    ) -> list[Point]:
        got = self.lab.measure(sha, cases=cases, again=again, processes=processes)
        self.points += got
        return got

    def recorded(self, shas: Sequence[str], *, case: str | None = None) -> list[Point]:
        return self.lab.recorded(shas, case=case)


@click.command("compare")
@click.argument("base")
@click.argument("head")
@click.option(
    "--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
)
@click.option("--metric", "metrics", multiple=True, metavar="NAME", help="Only this metric.")
@click.option(
    "--measure",
    is_flag=True,
    help="Measure both commits now, interleaved (A B A B ..., one fresh process per side "
    "per round), and compare those measurements alone.",
)
@processes_option(gate.DEFAULT_PROCESSES)
@max_processes_option
@click.option("--benches", metavar="PATH", help="With --measure: as for `run`.")
@click.option("--filter", "pattern", metavar="PATTERN", help="With --measure: as for `run`.")
@profile_option
@timeout_option
@click.option("--setup", metavar="CMD", help="With --measure: as for `run`.")
@pass_env_option
@param_option
@affinity_option
@markdown_option
@policy_options
@global_options
def compare_command(
    base: str,
    head: str,
    repo: Path,
    metrics: tuple[str, ...],
    measure: bool,
    processes: int,
    max_processes: int,
    benches: str | None,
    pattern: str | None,
    profile: str,
    timeout: float,
    setup: str | None,
    pass_env: tuple[str, ...],
    params: tuple[str, ...],
    affinity: str | None,
    as_markdown: bool,
    policy: str | None,
    thresholds: tuple[str, ...],
    alpha: float,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Compare every case and metric measured at BASE and HEAD on the same machine and
    profile. Exit 1 when something regressed."""
    g = globals_from(db, results, as_json)
    repository = Repository(repo)
    b, h = repository.sha(base), repository.sha(head)
    if params and not measure:
        raise ConfigError("--param sweeps what is measured: give it with --measure")
    if affinity is not None and not measure:
        raise ConfigError("--affinity places the workers that measure: give it with --measure")
    if measure:
        run = {
            "benches": benches,
            "filter": pattern,
            "profile": profile,
            "timeout_s": timeout,
            "setup": setup,
            "pass_env": check_pass_env(pass_env),
            "params": params_from(params),
            "affinity": affinity_from(affinity),
        }
        rows, now = measure_rows(
            g, repo, b, h, policy, thresholds, alpha, metrics, run, processes, max_processes
        )
        if not rows:
            raise CommitbenchError(f"no case measured ok at both {b[:12]} and {h[:12]}")
        title = f"{b[:12]} → {h[:12]} (measured now)"
        show(rows, title, as_markdown=as_markdown, as_json=g.json, state=now)
        return 1 if any(r.comparison.verdict == "regressed" for r in rows) else 0
    store, engine = open_reading_store(g)
    try:
        rows = load_rows(store, repository, b, h, policy, thresholds, alpha, metrics)
        where = PointFilter(repository=repository.id, shas=[b, h])
        machine = case_states(store.points(where), order=(b, h))
    finally:
        if engine is not None:
            engine.dispose()
    if not rows:
        raise CommitbenchError(
            f"nothing was measured at both {b[:12]} and {h[:12]} on one machine and profile "
            f"in {store.location}; measure them first: commitbench run {b[:12]} {h[:12]}"
        )
    title = f"{b[:12]} → {h[:12]}"
    show(rows, title, as_markdown=as_markdown, as_json=g.json, state=machine)
    return 1 if any(r.comparison.verdict == "regressed" for r in rows) else 0


def show(
    rows: list[Row],
    title: str,
    *,
    as_markdown: bool,
    as_json: bool,
    every_row: bool = False,
    state: Sequence[CaseState] = (),
) -> None:
    """The rows, then the machine's state behind them (analysis/machinestate.py)."""
    if as_json:
        emit_json({"title": title, "rows": rows_json(rows), "state": [s.as_json() for s in state]})
    elif as_markdown:
        click.echo(markdown(rows, title, every_row=every_row), nl=False)
        if state:
            click.echo("\n**Machine state**\n\n" + "".join(f"- {t}\n" for t in _lines(state)))
    else:
        stdout.print(rich_table(rows, title))
        if state:
            click.echo("machine state:\n" + "".join(f"  {t}\n" for t in _lines(state)), nl=False)


def _lines(state: Sequence[CaseState]) -> list[str]:
    return [printable(s.describe()) for s in state]
