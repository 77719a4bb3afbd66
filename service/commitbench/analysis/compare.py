"""Pairwise comparison of two commits: ratio, its interval, a test, and a verdict under a
minimum-effect policy, all from the two-level model of analysis.twolevel (processes,
then samples within them; its docstring gives the method, its sources and its limits).

- A process is one worker process of one run (metrics.MetricRecord.processes; a result
  recorded before issue 13 is one process). Its value is the policy's statistic of its
  samples.
- base and head are the geometric means of those per-process values, the ratio is
  head / base, and the 95% interval and p-value come from Welch's t-test on their logs.
- Verdicts: `regressed` / `improved` (by the metric's direction), `unchanged`, or
  `ambiguous` with how many more processes per side would likely decide it. One process
  per side is always `ambiguous`.
- The between-process spread (the pooled standard deviation of the log per-process
  values, shown as a percentage) comes with every row.
- Machine-state metrics (`state.*`, model.state) are context, never compared; the
  calibration among them is used by the model (flagged processes, a covariate), and so
  is contention: a process whose timed calls waited for a core (wall / CPU time above
  model.state.CONTENTION_WALL_PER_CPU) is left out of the test where two or more
  processes per side did not wait; otherwise, when the sides' shares of such processes
  differ, a `regressed` or `improved` verdict is held at `ambiguous` (the load, not the
  code, may have made the difference), and the note says so. So is one whose host-timed
  processes' calibrations (the CPU loop) differ between the sides by the minimum effect
  (at STATE_ALPHA) the same way as the change, even where the calibration was used as a
  covariate (a slope learnt within sides does not carry a difference between them): the
  machine, not the code, was slower on one side. Profile
  metrics (`profile.*`, model.profile) are compared when asked for by name, but never
  gate (analysis.gate) or count as a regression (detect).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from commitbench.analysis import twolevel
from commitbench.analysis.processes import Key, Process, processes_of
from commitbench.model.cases import case_matches
from commitbench.model.points import Point
from commitbench.model.stats import Stats
from commitbench.model.words import plural

STATISTICS = ("median", "mean", "min")
VERDICTS = ("regressed", "improved", "unchanged", "ambiguous")
DEFAULT_ALPHA = 0.01
# The test that the machine's state (the calibration) differed between the sides holds a
# verdict, so it errs on the side of holding: a looser level than the verdict's.
STATE_ALPHA = 0.05
_POLICY = re.compile(r"^\s*(median|mean|min)\s*:\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True)
class Policy:
    """How big a change must be to count, on which statistic: parsed from `median:5%`."""

    statistic: str = "median"
    threshold: float = 0.05

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(f"statistic {self.statistic!r} is not one of {STATISTICS}")
        if not 0 <= self.threshold < 10:
            raise ValueError("threshold must be a fraction in [0, 10)")

    @classmethod
    def parse(cls, text: str) -> Policy:
        found = _POLICY.match(text)
        if found is None:
            raise ValueError(f"policy {text!r} is not like median:5% (median, mean or min)")
        return cls(found.group(1), float(found.group(2)) / 100)

    def __str__(self) -> str:
        return f"{self.statistic}:{self.threshold * 100:g}%"


@dataclass(frozen=True)
class Policies:
    """A default policy and per-case overrides by pattern (cases.case_matches: a glob,
    or a substring; the last match wins)."""

    default: Policy = Policy()
    overrides: tuple[tuple[str, Policy], ...] = ()

    @classmethod
    def parse(cls, default: str | None, overrides: Mapping[str, str] | None = None) -> Policies:
        return cls(
            Policy.parse(default) if default else Policy(),
            tuple((pattern, Policy.parse(p)) for pattern, p in (overrides or {}).items()),
        )

    def for_case(self, label: str) -> Policy:
        chosen = self.default
        for pattern, policy in self.overrides:
            if case_matches(label, pattern):
                chosen = policy
        return chosen


@dataclass(frozen=True)
class Comparison:
    base: float
    head: float
    ratio: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    verdict: str
    policy: Policy
    processes_base: int = 1
    processes_head: int = 1
    spread: float | None = None  # between-process spread, a fraction (0.02: 2%)
    more: int | None = None  # ambiguous: more processes per side that would likely decide
    flagged: int = 0  # processes whose calibration differs from their peers
    adjusted: bool = False  # the calibration was used as a covariate
    contended: int = 0  # processes that waited for a core (see `compare`)
    contention_decides: bool = False  # contention, not the processes' number, undecided it
    left_out: bool = False  # the contended processes were left out of the test
    history: twolevel.Prior | None = None  # the spread came from the case's history
    state_moved: float | None = None  # held: the calibration's ratio between the sides

    @property
    def change(self) -> float:
        return self.ratio - 1.0

    @property
    def note(self) -> str:
        """What a reader needs beside the verdict, in words ('' when nothing)."""
        parts = []
        if self.verdict == "ambiguous" and self.contention_decides:
            parts.append(
                f"contention: {plural(self.contended, 'process', 'processes')} waited for a "
                "core, unevenly between the sides; measure on a quieter machine"
            )
        elif self.verdict == "ambiguous" and self.state_moved is not None:
            parts.append(
                "the machine's state differed between the sides (calibration "
                f"{(self.state_moved - 1) * 100:+.1f}%, the same way as the change); "
                "measure on a quieter machine"
            )
        elif self.verdict == "ambiguous":
            if self.processes_base == self.processes_head == 1 and self.history is None:
                parts.append("one process per side: the spread between processes is unknown")
            elif self.more is not None:
                more = plural(self.more, "more process", "more processes")
                parts.append(f"about {more} per side would decide")
            else:
                parts.append(f"more than {twolevel.MAX_MORE} more processes per side needed")
        if self.flagged:
            parts.append(
                f"{plural(self.flagged, 'process', 'processes')} in a different machine state"
            )
        if self.adjusted:
            parts.append("adjusted for the calibration")
        if self.history is not None:
            parts.append(
                f"one process per side: the spread between runs "
                f"(±{math.expm1(math.sqrt(self.history.variance)) * 100:.1f}%) is the "
                f"history's, {plural(self.history.commits, 'commit')} measured more than once"
            )
        if self.contended and not self.contention_decides:
            parts.append(
                f"{plural(self.contended, 'contended process', 'contended processes')} "
                + ("left out" if self.left_out else "on both sides alike")
            )
        return "; ".join(parts)


def statistic_of(samples: Sequence[float], name: str) -> float:
    if name == "median":
        return Stats.of(samples).median
    if name == "mean":
        return statistics.fmean(samples)
    return min(samples)


def compare(
    base: Sequence[Process],
    head: Sequence[Process],
    *,
    direction: str,
    policy: Policy = Policy(),
    alpha: float = DEFAULT_ALPHA,
    prior: twolevel.Prior | None = None,
) -> Comparison:
    """Compare one metric at two commits, process by process (see the module docstring);
    `prior`: the case's spread between runs from its history (analysis/history.py), used
    only with one process on each side."""
    base = [p for p in base if p.samples]
    head = [p for p in head if p.samples]
    if not base or not head:
        raise ValueError("compare needs samples on both sides")
    contended = sum(p.contended for p in (*base, *head))
    quiet_b = [p for p in base if not p.contended]
    quiet_h = [p for p in head if not p.contended]
    if contended and len(quiet_b) >= 2 and len(quiet_h) >= 2:
        # Enough processes ran without waiting for a core: the test is theirs alone.
        c = compare(quiet_b, quiet_h, direction=direction, policy=policy, alpha=alpha, prior=prior)
        return replace(c, contended=contended, left_out=True)
    uneven = sum(p.contended for p in base) / len(base) != sum(p.contended for p in head) / len(
        head
    )
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction {direction!r} is not lower or higher")
    vb = [statistic_of(p.samples, policy.statistic) for p in base]
    vh = [statistic_of(p.samples, policy.statistic) for p in head]
    if any(v <= 0 for v in (*vb, *vh)):
        return _not_positive(vb, vh, policy, {"processes_base": len(vb), "processes_head": len(vh)})
    e = twolevel.estimate(
        vb,
        vh,
        base_calibration=[p.calibration for p in base],
        head_calibration=[p.calibration for p in head],
        prior=prior,
    )
    b = math.exp(statistics.fmean(math.log(v) for v in vb))
    ratio = math.exp(e.diff)
    ci = e.interval()
    decided = twolevel.decide(e, policy.threshold, alpha)
    if decided in ("worse", "better"):
        worse = decided == "worse"
        verdict = "regressed" if worse == (direction == "lower") else "improved"
    else:
        verdict = decided
    # Processes that waited for a core, in different shares on the two sides, can make
    # a difference by themselves: a decided change stays undecided (issue 13: under
    # changing load the answer is ambiguous or contention, never a false regression).
    held = contended > 0 and uneven and verdict in ("regressed", "improved")
    moved = None
    if not held and verdict in ("regressed", "improved"):
        slower = e.diff > 0 if direction == "lower" else e.diff < 0  # HEAD's values
        moved = _state_moved(base, head, slower, policy.threshold)
    held = held or moved is not None
    if held:
        verdict = "ambiguous"
    return Comparison(
        base=b,
        head=b * ratio,
        ratio=ratio,
        ci_low=math.exp(ci[0]) if ci else None,
        ci_high=math.exp(ci[1]) if ci else None,
        p_value=e.p_value,
        verdict=verdict,
        policy=policy,
        spread=math.expm1(e.spread) if e.spread is not None else None,
        more=twolevel.more_processes(e, policy.threshold, alpha)
        if verdict == "ambiguous" and not held
        else None,
        flagged=e.flagged,
        adjusted=e.adjusted,
        contended=contended,
        contention_decides=held and moved is None,
        history=e.prior,
        state_moved=moved,
        processes_base=len(vb),
        processes_head=len(vh),
    )


def _state_moved(
    base: Sequence[Process], head: Sequence[Process], slower: bool, threshold: float
) -> float | None:
    """The calibration's ratio HEAD/BASE when the machine's state differed between the
    sides the way the case did: host-timed processes (their calibration is the CPU loop,
    which slows with what slows the case), two or more a side, and the calibrations
    themselves decided apart by the minimum effect at STATE_ALPHA, HEAD's machine the
    slower one when HEAD's values are the slower ones (`slower`: larger times, smaller
    throughputs), or the faster when they are the faster. None otherwise."""
    cb = [p.calibration for p in base]
    ch = [p.calibration for p in head]
    if len(cb) < 2 or len(ch) < 2 or not all(p.host_timed for p in (*base, *head)):
        return None
    xb = [c for c in cb if c is not None and c > 0]
    xh = [c for c in ch if c is not None and c > 0]
    if len(xb) != len(cb) or len(xh) != len(ch):
        return None
    e = twolevel.estimate(xb, xh)
    decided = twolevel.decide(e, threshold, STATE_ALPHA)
    if decided not in ("worse", "better") or (decided == "worse") != slower:
        return None
    return math.exp(e.diff)


def _not_positive(
    vb: Sequence[float], vh: Sequence[float], policy: Policy, counts: Mapping[str, int]
) -> Comparison:
    """Values at or below zero have no ratio model: equal values are unchanged, anything
    else is ambiguous."""
    b, h = statistics.fmean(vb), statistics.fmean(vh)
    same = len({*vb, *vh}) == 1
    ratio = h / b if b > 0 else 1.0 if h == b else math.inf
    return Comparison(
        b,
        h,
        ratio,
        None,
        None,
        None,
        "unchanged" if same else "ambiguous",
        policy,
        processes_base=counts["processes_base"],
        processes_head=counts["processes_head"],
    )


@dataclass(frozen=True)
class Row:
    machine_label: str
    profile: str
    case: str
    metric: str
    unit: str
    direction: str
    n_base: int  # samples
    n_head: int
    comparison: Comparison
    runs_base: int = 1  # results (runs) behind the base value
    runs_head: int = 1


_ORDER = {"regressed": 0, "improved": 1, "ambiguous": 2, "unchanged": 3}


def compare_points(
    base: Sequence[Point],
    head: Sequence[Point],
    policies: Policies = Policies(),
    *,
    alpha: float = DEFAULT_ALPHA,
    priors: Mapping[Key, twolevel.Prior] | None = None,
) -> list[Row]:
    """Compare every (machine, profile, case, metric) present on both sides: `base` and
    `head` are result-level points of one commit each (any number of runs, each with
    any number of processes). `priors`: spreads between runs from the history
    (analysis/history.py) for comparisons of one process a side. Worst first."""
    before, after = processes_of(base), processes_of(head)
    labels = {(p.machine, p.profile): p.machine_label for p in (*base, *head)}
    runs: dict[tuple[str, Key], set[object]] = {}
    samples: dict[tuple[str, Key], int] = {}
    for side, points in (("b", base), ("h", head)):
        for p in points:
            key = (p.machine, p.profile, p.case, p.metric, p.unit, p.direction)
            runs.setdefault((side, key), set()).add(p.run_id)
            samples[(side, key)] = samples.get((side, key), 0) + len(p.samples)
    rows = []
    for key in sorted(before.keys() & after.keys()):
        machine, profile, case, metric, unit, direction = key
        c = compare(
            before[key],
            after[key],
            direction=direction,
            policy=policies.for_case(case),
            alpha=alpha,
            prior=(priors or {}).get(key),
        )
        rows.append(
            Row(
                labels[(machine, profile)],
                profile,
                case,
                metric,
                unit,
                direction,
                samples[("b", key)],
                samples[("h", key)],
                c,
                len(runs[("b", key)]),
                len(runs[("h", key)]),
            )
        )
    rows.sort(key=lambda r: (_ORDER[r.comparison.verdict], -abs(r.comparison.change)))
    return rows


def compare_commits(
    base: str,
    head: str,
    results: Sequence[Point],
    policies: Policies = Policies(),
    *,
    alpha: float = DEFAULT_ALPHA,
    priors: Mapping[Key, twolevel.Prior] | None = None,
) -> list[Row]:
    """Compare commits `base` and `head` (shas) from the result-level points of both."""
    return compare_points(
        [p for p in results if p.sha == base],
        [p for p in results if p.sha == head],
        policies,
        alpha=alpha,
        priors=priors,
    )
