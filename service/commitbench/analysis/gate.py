"""The decisions behind `check` (the CI gate) and `bisect`, over a `Lab` that measures.

Nothing here runs a process or opens a database: a `Lab` measures a commit and reads
back what is recorded (runner.lab.RunnerLab wires the Runner and a store), so the fleet,
a bot or a test can drive the same decisions with a lab of their own.

check:
1. Measure what is missing at BASE and HEAD (recorded work is reused).
2. Compare them on this machine and profile. Nothing regressed: done.
3. Otherwise re-measure only the regressed cases, BASE and HEAD interleaved
   (A B A B ...), and compare those fresh samples alone: a regression that was machine
   drift, a noisy neighbour or an unlucky first run does not survive interleaving. Only a
   regression confirmed there fails the gate.

bisect: binary search over the first-parent commits between GOOD and BAD for the first
commit of a step (analysis.bisect), measuring each probe only if it is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from commitbench.analysis import bisect as search
from commitbench.analysis.compare import (
    DEFAULT_ALPHA,
    Comparison,
    Policies,
    Row,
    compare,
    compare_sets,
    samples_of,
)
from commitbench.errors import CommitbenchError
from commitbench.model.points import Point
from commitbench.model.stats import Stats
from commitbench.model.words import plural

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    return None


class Lab(Protocol):
    """Measures commits on one machine and profile, and reads back what is recorded there."""

    def measure(
        self, sha: str, *, cases: frozenset[str] | None = None, again: bool = False
    ) -> list[Point]:
        """Measure `sha` (only `cases`, if given): what is missing, or everything again
        with `again`. Returns the points of this measurement alone."""
        ...

    def recorded(self, shas: Sequence[str], *, case: str | None = None) -> list[Point]:
        """Everything recorded at `shas` on this machine and profile (all runs)."""
        ...


# -- check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    base: str
    head: str
    rows: list[Row]  # the comparison of everything recorded at BASE and HEAD
    suspects: list[Row]  # rows that regressed there
    confirmation: list[Row]  # the suspects compared again on interleaved measurements
    rounds: int

    @property
    def confirmed(self) -> list[Row]:
        return [r for r in self.confirmation if r.comparison.verdict == "regressed"]

    @property
    def exit_code(self) -> int:
        """1 only when a regression was confirmed by interleaved re-measurement."""
        return 1 if self.confirmed else 0

    @property
    def summary(self) -> str:
        if self.confirmed:
            return f"{plural(len(self.confirmed), 'regression')} confirmed"
        if self.suspects:
            return f"no confirmed regression ({len(self.suspects)} not confirmed)"
        return "no regression"


def check(
    lab: Lab,
    base: str,
    head: str,
    policies: Policies,
    *,
    alpha: float = DEFAULT_ALPHA,
    rounds: int = 2,
    progress: Progress = _quiet,
) -> GateResult:
    """The CI gate (see the module docstring)."""
    if base == head:
        raise CommitbenchError(f"BASE and HEAD are the same commit {head[:12]}")
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    progress(f"measuring {base[:12]} (base) and {head[:12]} (head)")
    lab.measure(base)
    lab.measure(head)
    rows = compare_sets(
        samples_of(lab.recorded([base])), samples_of(lab.recorded([head])), policies, alpha=alpha
    )
    suspects = [r for r in rows if r.comparison.verdict == "regressed"]
    confirmation: list[Row] = []
    if suspects:
        confirmation = confirm(
            lab, base, head, suspects, policies, alpha=alpha, rounds=rounds, progress=progress
        )
    return GateResult(base, head, rows, suspects, confirmation, rounds)


def confirm(
    lab: Lab,
    base: str,
    head: str,
    suspects: Sequence[Row],
    policies: Policies,
    *,
    alpha: float = DEFAULT_ALPHA,
    rounds: int = 2,
    progress: Progress = _quiet,
) -> list[Row]:
    """Re-measure the suspect cases A B A B ... and compare those fresh samples alone.

    Returns the comparison of every suspect (case, metric) on the fresh samples, whatever
    its verdict, so a caller can show why a suspect was not confirmed.
    """
    cases = frozenset(r.case for r in suspects)
    fresh: dict[str, list[Point]] = {base: [], head: []}
    for i in range(rounds):
        for sha in (base, head):
            progress(f"confirming: round {i + 1}/{rounds}, {sha[:12]}")
            fresh[sha] += lab.measure(sha, cases=cases, again=True)
    again = compare_sets(samples_of(fresh[base]), samples_of(fresh[head]), policies, alpha=alpha)
    wanted = {(r.case, r.metric) for r in suspects}
    return [r for r in again if (r.case, r.metric) in wanted]


# -- bisect ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BisectResult:
    case: str
    metric: str
    unit: str
    candidates: tuple[str, ...]  # first-parent commits after GOOD, up to BAD
    step: Comparison  # GOOD against BAD
    first_bad: str
    probes: tuple[search.Probe, ...]


class _Series:
    """One case's metric at commits: measured only if missing, read back pooled."""

    def __init__(self, lab: Lab, case: str, metric: str | None) -> None:
        self.lab, self.case, self.metric = lab, case, metric
        self.unit = ""

    def samples(self, sha: str) -> list[float]:
        self.lab.measure(sha, cases=frozenset({self.case}))
        points = self.lab.recorded([sha], case=self.case)
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


def bisect(
    lab: Lab,
    good: str,
    bad: str,
    candidates: Sequence[str],
    case: str,
    metric: str | None = None,
    *,
    progress: Progress = _quiet,
    describe: Callable[[float, str], str] = lambda v, unit: f"{v:g} {unit}",
) -> BisectResult:
    """The first commit of the step in `case` between GOOD and BAD (see the docstring).

    `candidates` are the first-parent commits after GOOD, oldest first, ending with BAD.
    """
    if not candidates or candidates[-1] != bad:
        raise CommitbenchError(f"{bad[:12]} is not a first-parent descendant of {good[:12]}")
    series = _Series(lab, case, metric)
    base, head = series.samples(good), series.samples(bad)
    # Only whether there is a step matters here, not its sign: direction is moot.
    step = compare(base, head, direction="lower")
    name = series.metric or ""
    if step.verdict in ("unchanged", "noisy"):
        raise CommitbenchError(
            f"{case} {name}: {good[:12]} and {bad[:12]} differ by {step.change * 100:+.1f}% "
            f"({step.verdict}); there is no step to bisect"
        )
    progress(
        f"{case} {name}: {describe(step.base, series.unit)} at {good[:12]} → "
        f"{describe(step.head, series.unit)} at {bad[:12]}; "
        f"{plural(len(candidates), 'first-parent commit')}, "
        f"about {search.steps_needed(len(candidates))} to measure"
    )

    def measure(i: int) -> float:
        value = series.value(candidates[i])
        progress(f"  {candidates[i][:12]} {describe(value, series.unit)}")
        return value

    first, probes = search.bisect(len(candidates), step.base, step.head, measure)
    return BisectResult(
        case, name, series.unit, tuple(candidates), step, candidates[first], tuple(probes)
    )
