"""The decisions behind `check` (the CI gate), `compare --measure` and `bisect`, over a
`Lab` that measures.

Nothing here runs a process or opens a database: a `Lab` measures a commit and reads
back what is recorded (runner.lab.RunnerLab wires the Runner and a store), so the fleet,
a bot or a test can drive the same decisions with a lab of their own.

Every decision measures BASE and HEAD interleaved at the process level (A B A B ...: one
fresh worker process per side per round), so drift of the machine between runs (load, a
noisy neighbour, clocks) falls on both sides alike, and compares them with the two-level
model of analysis.twolevel (the process is the unit). Where a row comes out `ambiguous`
and its comparison says how many more processes would likely decide it, that many more
rounds of its case are measured, up to `max_processes` per side in all and at most
MAX_LOOKS times (`extend`): repetition goes where the variance is.

check:
1. Measure what is missing at BASE and HEAD, interleaved, in `processes` processes each
   (recorded work is reused).
2. Compare everything recorded at both on this machine and profile. Nothing regressed:
   done.
3. Otherwise re-measure only the regressed cases, interleaved again (`rounds` rounds of
   one process per side, at least `processes`), and compare those fresh processes alone.
   Only a regression confirmed there fails the gate; an `ambiguous` confirmation says
   how many more processes would decide it.

bisect's decisions over the same Lab are in analysis/bisecting.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from commitbench.analysis.compare import DEFAULT_ALPHA, Policies, Row, compare_points
from commitbench.errors import CommitbenchError
from commitbench.model import sampled
from commitbench.model.points import Point
from commitbench.model.profile import is_profile
from commitbench.model.words import plural

Progress = Callable[[str], None]
DEFAULT_PROCESSES = 3
# Ambiguous rows get more interleaved processes, up to this many per side in all, in at
# most MAX_LOOKS extensions (each look is another chance of a false verdict: few looks,
# at alpha 0.01 and with the minimum effect required, keep that small).
DEFAULT_MAX_PROCESSES = 10
MAX_LOOKS = 3


def quiet(message: str) -> None:
    return None


class Lab(Protocol):
    """Measures commits on one machine and profile, and reads back what is recorded there."""

    def measure(
        self,
        sha: str,
        *,
        cases: frozenset[str] | None = None,
        again: bool = False,
        processes: int = 1,
    ) -> list[Point]:
        """Measure `sha` (only `cases`, if given) in `processes` fresh worker processes
        per case: what is missing, or everything again with `again`. Returns the points
        of this measurement alone."""
        ...

    def recorded(self, shas: Sequence[str], *, case: str | None = None) -> list[Point]:
        """Everything recorded at `shas` on this machine and profile (all runs)."""
        ...


def interleaved(
    lab: Lab,
    base: str,
    head: str,
    rounds: int,
    *,
    cases: frozenset[str] | None = None,
    again: bool = True,
    progress: Progress = quiet,
) -> dict[str, list[Point]]:
    """Measure BASE and HEAD A B A B ..., one fresh process per side per round; the first
    round measures what is missing (or everything, with `again`), the later rounds the
    cases the first one measured. Returns the fresh points of each side."""
    fresh: dict[str, list[Point]] = {base: [], head: []}
    wanted: dict[str, frozenset[str] | None] = {base: cases, head: cases}
    for i in range(rounds):
        for sha in (base, head):
            chosen = wanted[sha]
            if i > 0 and not chosen:
                continue
            progress(f"round {i + 1}/{rounds}: {sha[:12]}")
            points = lab.measure(sha, cases=chosen, again=again or i > 0)
            fresh[sha] += points
            if i == 0:
                wanted[sha] = frozenset(p.case for p in points)
    return fresh


# -- check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    base: str
    head: str
    rows: list[Row]  # the comparison of everything recorded at BASE and HEAD
    suspects: list[Row]  # rows that regressed there
    confirmation: list[Row]  # the suspects compared again on interleaved measurements
    rounds: int
    processes: int = DEFAULT_PROCESSES

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
        ambiguous = sum(r.comparison.verdict == "ambiguous" for r in self.rows)
        if ambiguous:
            return f"no regression ({ambiguous} ambiguous)"
        return "no regression"


def check(
    lab: Lab,
    base: str,
    head: str,
    policies: Policies,
    *,
    alpha: float = DEFAULT_ALPHA,
    rounds: int = DEFAULT_PROCESSES,
    processes: int = DEFAULT_PROCESSES,
    max_processes: int = DEFAULT_MAX_PROCESSES,
    progress: Progress = quiet,
) -> GateResult:
    """The CI gate (see the module docstring)."""
    if base == head:
        raise CommitbenchError(f"BASE and HEAD are the same commit {head[:12]}")
    if rounds < 1 or processes < 1:
        raise ValueError("rounds and processes must be >= 1")
    progress(f"measuring {base[:12]} (base) and {head[:12]} (head), interleaved")
    interleaved(lab, base, head, processes, again=False, progress=progress)
    rows = extend(
        lab,
        base,
        head,
        lambda: compare_points(lab.recorded([base]), lab.recorded([head]), policies, alpha=alpha),
        used=processes,
        max_processes=max_processes,
        progress=progress,
    )
    # Where the time went (profile.*) explains a change, and the sampler's summaries
    # describe it (model/sampled.py): neither fails a build.
    suspects = [r for r in rows if r.comparison.verdict == "regressed" and decisive(r)]
    confirmation: list[Row] = []
    if suspects:
        confirmation = confirm(
            lab,
            base,
            head,
            suspects,
            policies,
            alpha=alpha,
            rounds=max(rounds, processes),
            max_processes=max_processes,
            progress=progress,
        )
    return GateResult(base, head, rows, suspects, confirmation, rounds, processes)


def measure_and_compare(
    lab: Lab,
    base: str,
    head: str,
    policies: Policies,
    *,
    alpha: float = DEFAULT_ALPHA,
    processes: int = DEFAULT_PROCESSES,
    max_processes: int = DEFAULT_MAX_PROCESSES,
    cases: frozenset[str] | None = None,
    progress: Progress = quiet,
) -> list[Row]:
    """`compare --measure`: both commits measured now, interleaved, and those fresh
    processes compared alone (ambiguous rows extended, see `extend`)."""
    if base == head:
        raise CommitbenchError(f"BASE and HEAD are the same commit {head[:12]}")
    fresh = interleaved(lab, base, head, processes, cases=cases, progress=progress)
    return extend(
        lab,
        base,
        head,
        lambda: compare_points(fresh[base], fresh[head], policies, alpha=alpha),
        used=processes,
        max_processes=max_processes,
        fresh=fresh,
        progress=progress,
    )


def decisive(row: Row) -> bool:
    """Whether `row` may fail the gate or bring more processes: not a profile metric
    (where the time went) nor, unless precise enough, one of the sampler's summaries
    (model/sampled.py)."""
    c = row.comparison
    return not is_profile(row.metric) and sampled.may_gate(
        row.metric, c.ci_low, c.ci_high, c.policy.threshold
    )


def extend(
    lab: Lab,
    base: str,
    head: str,
    rows_of: Callable[[], list[Row]],
    *,
    used: int,
    max_processes: int,
    fresh: dict[str, list[Point]] | None = None,
    progress: Progress = quiet,
) -> list[Row]:
    """Repeat where it decides: while decisive rows are ambiguous and the processes their
    comparison says would decide them (or, first, those that bring a side recorded with
    fewer up to `used`) fit under `max_processes` per side, measure that many more
    interleaved rounds of those cases (at most MAX_LOOKS times) and compare again. New
    points go to `fresh` when given (what `rows_of` reads)."""
    rows = rows_of()
    target = used

    def wanted(r: Row) -> int | None:
        """More processes per side for an ambiguous row: up to `target` first (a side
        recorded earlier with fewer, e.g. one nightly run), then what would decide it."""
        c = r.comparison
        if c.verdict != "ambiguous" or not decisive(r):
            return None
        short = target - min(c.processes_base, c.processes_head)
        return short if short > 0 else c.more

    for _ in range(MAX_LOOKS):
        room = max_processes - used
        waiting = [(r, n) for r in rows if (n := wanted(r)) is not None and n <= room]
        if not waiting:
            break
        extra = max(n for _, n in waiting)
        progress(
            f"{plural(len(waiting), 'ambiguous row')}: "
            f"{plural(extra, 'more process', 'more processes')} per side"
        )
        more = interleaved(
            lab, base, head, extra, cases=frozenset(r.case for r, _ in waiting), progress=progress
        )
        if fresh is not None:
            for sha in (base, head):
                fresh[sha] += more[sha]
        used += extra
        rows = rows_of()
    return rows


def confirm(
    lab: Lab,
    base: str,
    head: str,
    suspects: Sequence[Row],
    policies: Policies,
    *,
    alpha: float = DEFAULT_ALPHA,
    rounds: int = DEFAULT_PROCESSES,
    max_processes: int = DEFAULT_MAX_PROCESSES,
    progress: Progress = quiet,
) -> list[Row]:
    """Re-measure the suspect cases A B A B ... (one process per side per round) and
    compare those fresh processes alone (ambiguous ones extended, see `extend`).

    Returns the comparison of every suspect (case, metric) on the fresh samples, whatever
    its verdict, so a caller can show why a suspect was not confirmed.
    """
    cases = frozenset(r.case for r in suspects)
    told: Progress = lambda m: progress(f"confirming: {m}")  # noqa: E731
    fresh = interleaved(lab, base, head, rounds, cases=cases, progress=told)
    again = extend(
        lab,
        base,
        head,
        lambda: compare_points(fresh[base], fresh[head], policies, alpha=alpha),
        used=rounds,
        max_processes=max_processes,
        fresh=fresh,
        progress=told,
    )
    wanted = {(r.case, r.metric) for r in suspects}
    return [r for r in again if (r.case, r.metric) in wanted]
