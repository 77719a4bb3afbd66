"""What `commitbench run` shows while it works: a live display on a terminal, plain
lines in logs (CI, cron), nothing with --json; and the summary table at the end."""

from __future__ import annotations

import time
from collections.abc import Sequence

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

from commitbench.model.records import CommitInfo, ResultRecord
from commitbench.runner.runner import CommitOutcome


def headline(result: ResultRecord) -> float | None:
    """The median of the case's first metric: its main timing by convention."""
    return result.metrics[0].median if result.metrics else None


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
        click.echo(f"measuring {len(commits)} commit(s)", err=True)

    def commit_started(self, index: int, commit: CommitInfo) -> None:
        elapsed = time.monotonic() - self.t0
        click.echo(
            f"[{index + 1}/{self.total}] {commit.sha[:12]} {commit.subject or ''} "
            f"({elapsed:.0f} s elapsed)",
            err=True,
        )

    def case_finished(self, result: ResultRecord) -> None:
        unit = result.metrics[0].unit if result.metrics else ""
        click.echo(
            f"  {result.status:8} {result.case.label}  {fmt_value(headline(result), unit)}",
            err=True,
        )

    def commit_finished(self, outcome: CommitOutcome) -> None:
        if outcome.run_id is None:
            click.echo(
                f"  nothing to do: {outcome.already_recorded} case(s) recorded before", err=True
            )


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
        self.progress.update(self.task, description=f"{self.prefix} {escape(label)}")

    def case_finished(self, result: ResultRecord) -> None:
        self.progress.console.print(
            Text(f"  {result.status:8} {result.case.label}"), highlight=False
        )

    def commit_finished(self, outcome: CommitOutcome) -> None:
        self.progress.advance(self.task)

    def stop(self) -> None:
        self.progress.stop()


def summary(outcomes: Sequence[CommitOutcome]) -> Table | None:
    """The last measured commit's cases: status, median, change vs the previous commit."""
    measured = [o for o in outcomes if o.results]
    if not measured:
        return None
    last = measured[-1]
    before = {r.case.label: r for r in measured[-2].results} if len(measured) > 1 else {}
    table = Table(
        "case",
        "status",
        "median",
        "vs previous commit",
        title=f"{last.commit.sha[:12]} {last.commit.subject or ''}",
    )
    for r in last.results:
        unit = r.metrics[0].unit if r.metrics else ""
        now, prev = headline(r), before.get(r.case.label)
        then = headline(prev) if prev is not None else None
        change = f"{(now / then - 1) * 100:+.1f}%" if now is not None and then else ""
        status = Text(r.status, style="green" if r.status in ("ok", "skipped") else "red")
        table.add_row(Text(r.case.label), status, fmt_value(now, unit), change)
    return table
