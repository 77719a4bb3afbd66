"""What every subcommand shares: the global options, opening stores, printing."""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from commitbench import config
from commitbench.analysis.compare import Policies
from commitbench.errors import ConfigError
from commitbench.model import cpus, sweep
from commitbench.model.records import PROFILES
from commitbench.model.sweep import Overrides
from commitbench.runner.vcs import RevSpec
from commitbench.store import open as store_open

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from commitbench.store.csv import CsvStore
    from commitbench.store.sql import SqlStore

F = TypeVar("F", bound=Callable[..., Any])

# Tables and data go to stdout (`commitbench compare A B > out.txt` keeps them); progress,
# warnings and errors to stderr. Not a terminal (a file, a pipe, CI logs, cron mail): a
# wide fixed width, so case ids are not cropped at 80 columns.
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


@dataclass(frozen=True)
class Globals:
    settings: config.Settings
    json: bool


def global_options(fn: F) -> F:
    """--db, --results and --json on every command, and on `commitbench` itself before
    the subcommand (`globals_from` takes the innermost value given)."""
    fn = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(fn)
    fn = click.option(
        "--results",
        type=click.Path(file_okay=False, path_type=Path),
        help="CSV results directory [env COMMITBENCH_RESULTS; default .commitbench/results].",
    )(fn)
    fn = click.option(
        "--db",
        metavar="URL",
        help="PostgreSQL URL, postgresql://USER@HOST:PORT/DB [env COMMITBENCH_DB]. "
        "Put the password in the environment, not on the command line.",
    )(fn)
    return fn


# The measuring options that run, check, bisect and enqueue share, defined once so their
# meaning and defaults cannot drift apart.
profile_option = click.option(
    "--profile",
    type=click.Choice([*PROFILES, "auto"]),
    default="auto",
    show_default=True,
    help="auto: full on a machine with a GPU, smoke otherwise.",
)


def processes_option(default: int) -> Callable[[F], F]:
    """--processes: fresh worker processes per case (per side, interleaved A B A B, where
    two commits are decided): the unit of repetition of the statistics."""
    return click.option(
        "--processes",
        type=click.IntRange(min=1),
        default=default,
        show_default=True,
        help="Fresh worker processes per case (per commit, interleaved, where two commits "
        "are compared); the statistics repeat at this level.",
    )


def max_processes_option(fn: F) -> F:
    from commitbench.analysis.gate import DEFAULT_MAX_PROCESSES

    return click.option(
        "--max-processes",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_PROCESSES,
        show_default=True,
        help="Ambiguous rows get more interleaved processes, up to this many per side.",
    )(fn)


timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds a case may run before it is killed.",
)


pass_env_option = click.option(
    "--pass-env",
    "pass_env",
    multiple=True,
    metavar="NAME",
    help="Give bench code (workers, --setup) the environment variable NAME as this "
    "process has it; repeatable. Bench code gets only an allow-list otherwise "
    "(README, Untrusted bench code); the database's credentials never.",
)


param_option = click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=V1,V2,...",
    help="Sweep parameter NAME over these values in every selected bench that declares "
    "it, in place of its declared values (others may be new; each is a case of its own); "
    "repeatable, one NAME each. Values take the type of the declared ones.",
)


affinity_option = click.option(
    "--affinity",
    metavar="CPUS",
    default=None,
    help="Run the workers only on these CPUs (a list like 0-3,8; pyperf's --affinity): "
    "where a case's time follows the core it lands on, pinning takes that out of the "
    "spread between processes. Each result keeps the CPU its worker ran on.",
)


def affinity_from(text: str | None) -> frozenset[int] | None:
    """--affinity as a CPU set this process may use; anything else is bad input."""
    if text is None:
        return None
    try:
        wanted = cpus.parse(text)
    except ValueError as err:
        raise ConfigError(f"--affinity: {err}") from None
    problem = cpus.outside(wanted, frozenset(os.sched_getaffinity(0)))
    if problem is not None:
        raise ConfigError(problem)
    return wanted


def params_from(items: Sequence[str]) -> Overrides:
    """--param options as overrides (model/sweep.py); malformed ones are bad input."""
    try:
        return sweep.parse(items)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def rev_spec(
    revs: Sequence[str], since: str | None, max_count: int | None, first_parent: bool
) -> RevSpec:
    """REVS and the history options of run and enqueue. --first-parent only shapes a walk
    of history: on named commits alone it would change nothing, silently."""
    spec = RevSpec(tuple(revs), since=since, max_count=max_count, first_parent=first_parent)
    if first_parent and not spec.walks:
        named = " ".join(revs) or "HEAD"
        what = "names one commit" if len(revs) <= 1 else "name commits"
        raise ConfigError(
            f"--first-parent walks history, but {named} {what}: give a range "
            f"(A..{revs[-1] if revs else 'HEAD'}), --max-count N or --since DATE"
        )
    return spec


def globals_from(db: str | None, results: Path | None, as_json: bool) -> Globals:
    """The settings a command runs with: its own --db/--results/--json, else those given
    before it (`commitbench --db URL run`, `commitbench regressions --json ack 3`), else
    the environment and [tool.commitbench]."""
    ctx = click.get_current_context(silent=True)
    parent = ctx.parent if ctx is not None else None
    while parent is not None:
        given = parent.params
        db = db if db is not None else given.get("db")
        results = results if results is not None else given.get("results")
        as_json = as_json or bool(given.get("as_json"))
        parent = parent.parent
    return Globals(settings=config.resolve(db=db, results=results), json=as_json)


def require_db(g: Globals) -> str:
    if not g.settings.db:
        raise ConfigError("no database: pass --db URL or set COMMITBENCH_DB")
    return g.settings.db


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def warn(message: str) -> None:
    click.echo(f"commitbench: warning: {message}", err=True)


def info(message: str) -> None:
    """Progress: to stderr."""
    click.echo(message, err=True)


def say(message: str) -> None:
    """What the command found or did (its result): to stdout."""
    click.echo(message)


def open_reading_store(g: Globals) -> tuple[SqlStore | CsvStore, Engine | None]:
    """Where analysis commands read (store.open.open_reading_store)."""
    return store_open.open_reading_store(g.settings.db, g.settings.results)


def check_metrics(requested: Sequence[str], measured: Iterable[str], where: str) -> None:
    """A --metric that names nothing measured is a typo until shown otherwise: say so, with
    the closest name and every name there is, rather than report that nothing changed."""
    names = sorted(set(measured))
    for name in requested:
        if name in names:
            continue
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"no metric {name!r} {where}; {hint}measured: {', '.join(names) or 'none'}"
        )


def policies_from(policy: str | None, thresholds: Sequence[str]) -> Policies:
    """--policy and --threshold PATTERN=POLICY over [tool.commitbench] policy/thresholds."""
    table = config.project_table(Path.cwd())
    overrides = dict(table.get("thresholds", {}) or {})
    for item in thresholds:
        pattern, sep, value = item.partition("=")
        if not sep or not pattern:
            raise ConfigError(
                f"--threshold {item!r} is not PATTERN=POLICY (e.g. 'matmul.*=median:3%')"
            )
        overrides[pattern] = value
    try:
        return Policies.parse(policy or table.get("policy"), overrides)
    except ValueError as err:
        raise ConfigError(str(err)) from None
