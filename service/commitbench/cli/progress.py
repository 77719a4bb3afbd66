"""What `commitbench run` shows while it works: a live display on a terminal, plain
lines in logs (CI, cron), nothing with --json; and the summary table at the end."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from commitbench.model.metrics import MetricRecord
from commitbench.model.records import FAILED_STATUSES as BROKEN
from commitbench.model.records import CommitInfo, ResultRecord
from commitbench.model.text import printable
from commitbench.model.words import plural
from commitbench.runner.worktrees import WORKTREE_PREFIX

if TYPE_CHECKING:  # the runner (and the database stack behind it) only where it runs
    from commitbench.runner.options import CommitOutcome


def headline_metric(result: ResultRecord) -> MetricRecord | None:
    """The case's first timing (unit s): its main measurement by convention. None for a
    case that timed nothing (skipped, failed, or one that records only other values)."""
    return next((m for m in result.metrics if m.unit == "s"), None)


def headline(result: ResultRecord) -> float | None:
    """The median of the headline metric."""
    metric = headline_metric(result)
    return metric.median if metric is not None else None


def used_of(result: ResultRecord) -> Mapping[str, Any]:
    """What the bench noted it actually used (`ctx.note`), e.g. the smoke profile's
    sizes; the harness puts it on every metric the bench recorded."""
    for m in result.metrics:
        used = m.properties.get("used")
        if isinstance(used, Mapping):
            return used
    return {}


def fmt_used(used: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(used.items()))


# `  File "/tmp/commitbench-wt-1-x/benches/bench_x.py", line 12, in compute`
_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)', re.MULTILINE)
# Frames that are not the bench's: Python's own modules, installed packages (except the
# built-in suite, which is installed as commitbench.benches), commitbench's harness.
_LIBRARY = re.compile(
    r"^<|/(site|dist)-packages/(?!commitbench/benches/)|/lib/python3[\d.]*/(?!(site|dist)-)"
    r"|/commitbench/(harness|model)/|/commitbench/worker\.py$"
)


def failure_site(error: str | None) -> str | None:
    """`file:line` of the innermost frame of the bench (or the code it measures) in a
    traceback, or None when the error has no such frame (a timeout, a crash). The path is
    relative to the commit's worktree, which is gone by the time anyone reads it."""
    sites = [m for m in _FRAME.finditer(error or "") if not _LIBRARY.search(m["path"])]
    if not sites:
        return None
    path = sites[-1]["path"]
    inside = path.split(f"/{WORKTREE_PREFIX}", 1)
    if len(inside) == 2:
        path = inside[1].split("/", 1)[-1]
    elif "/commitbench/benches/" in path:
        path = "commitbench/benches/" + path.split("/commitbench/benches/", 1)[1]
    elif Path(path).is_relative_to(Path.cwd()):
        path = str(Path(path).relative_to(Path.cwd()))
    return f"{path}:{sites[-1]['line']}"


def failure_line(result: ResultRecord) -> str:
    """`failed: CASE at FILE:LINE: last line of the error` for a summary."""
    last = (result.error or "").strip().splitlines()[-1:] or [""]
    site = failure_site(result.error)
    where = f" at {site}" if site else ""
    return f"{result.status}: {printable(result.case.label)}{where}: {printable(last[0])}"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
            if abs(value) >= scale:
                return f"{value / scale:.3f} {name}"
        return f"{value * 1e9:.1f} ns"
    return f"{value:.4g} {unit}"


class Quiet:
    def plan(self, commits: Sequence[str]) -> None:
        pass

    def commit_started(self, index: int, commit: CommitInfo) -> None:
        pass

    def case_started(self, label: str) -> None:
        pass

    def case_finished(self, result: ResultRecord) -> None:
        pass

    def commit_finished(self, outcome: CommitOutcome) -> None:
        pass


class Lines(Quiet):
    """One line per commit and per case, for logs."""

    def __init__(self) -> None:
        self.total = 0
        self.t0 = time.monotonic()

    def plan(self, commits: Sequence[str]) -> None:
        self.total = len(commits)
        click.echo(f"measuring {plural(len(commits), 'commit')}", err=True)

    def commit_started(self, index: int, commit: CommitInfo) -> None:
        elapsed = time.monotonic() - self.t0
        click.echo(
            f"[{index + 1}/{self.total}] {commit.sha[:12]} {commit.subject or ''} "
            f"({elapsed:.0f} s elapsed)",
            err=True,
        )

    def case_finished(self, result: ResultRecord) -> None:
        if result.status in BROKEN:
            click.echo(f"  {failure_line(result)}", err=True)
        else:
            used = fmt_used(used_of(result))
            click.echo(
                f"  {result.status:8} {printable(result.case.label)}  {fmt_headline(result)}"
                + (f"  (used {used})" if used else ""),
                err=True,
            )

    def commit_finished(self, outcome: CommitOutcome) -> None:
        if not outcome.results:
            click.echo(f"  nothing to do: {recorded_before(outcome)}", err=True)


def fmt_headline(result: ResultRecord) -> str:
    metric = headline_metric(result)
    return fmt_value(metric.median, metric.unit) if metric is not None else "-"


def recorded_before(outcome: CommitOutcome) -> str:
    """`3 cases recorded before, 1 of them failed (--retry-failed measures it again)`."""
    if not outcome.already_recorded:
        return "no case selected"
    text = f"{plural(outcome.already_recorded, 'case')} recorded before"
    if outcome.recorded_failed:
        them = "it" if outcome.recorded_failed == 1 else "them"
        text += f", {outcome.recorded_failed} of them failed (--retry-failed measures {them} again)"
    return text


class Live(Quiet):
    """A progress bar over commits, the current case, elapsed time and ETA."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("commits", total=0)
        self.prefix = ""

    def plan(self, commits: Sequence[str]) -> None:
        self.progress.update(self.task, total=len(commits))
        self.progress.start()

    def commit_started(self, index: int, commit: CommitInfo) -> None:
        self.prefix = f"{commit.sha[:12]}"
        self.progress.update(self.task, description=self.prefix)

    def case_started(self, label: str) -> None:
        self.progress.update(self.task, description=f"{self.prefix} {escape(printable(label))}")

    def case_finished(self, result: ResultRecord) -> None:
        line = (
            failure_line(result)
            if result.status in BROKEN
            else f"{result.status:8} {printable(result.case.label)}"
        )
        self.progress.console.print(Text(f"  {line}"), highlight=False)

    def commit_finished(self, outcome: CommitOutcome) -> None:
        self.progress.advance(self.task)

    def stop(self) -> None:
        self.progress.stop()


def summary(outcomes: Sequence[CommitOutcome]) -> Table | None:
    """The last measured commit's cases: status, the median of the first timing, its
    change vs the previous commit, and the sizes the bench noted it used."""
    measured = [o for o in outcomes if o.results]
    if not measured:
        return None
    last = measured[-1]
    before = {r.case.label: r for r in measured[-2].results} if len(measured) > 1 else {}
    with_used = any(used_of(r) for r in last.results)
    table = Table(
        "case",
        "status",
        "median",
        "vs previous commit",
        *(["used"] if with_used else []),
        title=f"{last.commit.sha[:12]} {last.commit.subject or ''}",
    )
    for r in last.results:
        now, prev = headline(r), before.get(r.case.label)
        then = headline(prev) if prev is not None else None
        change = f"{(now / then - 1) * 100:+.1f}%" if now is not None and then else ""
        status = Text(r.status, style="green" if r.status in ("ok", "skipped") else "red")
        used = [Text(fmt_used(used_of(r)))] if with_used else []
        table.add_row(Text(printable(r.case.label)), status, fmt_headline(r), change, *used)
    return table
