"""The decisions behind `bisect`, over the Lab of analysis/gate.py.

BOTH ENDS are measured again first, interleaved; without a decided step between them it
refuses. Each probe is measured in `processes` fresh processes and placed by two tests
(against GOOD's processes and against BAD's): it is on one side only when it differs
from the other end and not from its own. A probe that differs from both ends beyond
their range stops the search (more than one step, or a machine that changed), and so
does a probe the tests cannot place: the first commit is named only when every step of
the search was decided. The search itself (which commit to probe next) is the pure
analysis/bisect.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from commitbench.analysis import bisect as search
from commitbench.analysis.compare import DEFAULT_ALPHA, Comparison, Policy, compare
from commitbench.analysis.gate import DEFAULT_PROCESSES, Lab, Progress, interleaved, quiet
from commitbench.analysis.processes import Process, processes_of
from commitbench.errors import CommitbenchError
from commitbench.model import state
from commitbench.model.points import Point
from commitbench.model.profile import is_profile
from commitbench.model.words import plural


@dataclass(frozen=True)
class BisectResult:
    case: str
    metric: str
    unit: str
    candidates: tuple[str, ...]  # first-parent commits after GOOD, up to BAD
    step: Comparison  # GOOD against BAD, measured interleaved
    first_bad: str | None  # None: the search stopped (see `stopped`)
    probes: tuple[search.Probe, ...]
    stopped: str | None = None  # why no first commit is named


def _metric_of(points: Sequence[Point], case: str, metric: str | None, sha: str) -> str:
    names = sorted(
        {
            p.metric
            for p in points
            if p.case == case and not state.is_state(p.metric) and not is_profile(p.metric)
        }
    )
    if not names:
        raise CommitbenchError(f"{case} has no ok result at {sha[:12]}")
    if metric is None:
        return "time" if "time" in names else names[0]
    if metric not in names:
        raise CommitbenchError(f"{case} has no metric {metric!r} at {sha[:12]}")
    return metric


def _processes(points: Sequence[Point], case: str, metric: str) -> list[Process]:
    return [
        process
        for key, found in processes_of(points).items()
        if key[2] == case and key[3] == metric
        for process in found
    ]


def bisect(
    lab: Lab,
    good: str,
    bad: str,
    candidates: Sequence[str],
    case: str,
    metric: str | None = None,
    *,
    processes: int = DEFAULT_PROCESSES,
    alpha: float = DEFAULT_ALPHA,
    policy: Policy | None = None,
    progress: Progress = quiet,
    describe: Callable[[float, str], str] = lambda v, unit: f"{v:g} {unit}",
) -> BisectResult:
    """The first commit of the step in `case` between GOOD and BAD (see the docstring).

    `candidates` are the first-parent commits after GOOD, oldest first, ending with BAD.
    """
    if not candidates or candidates[-1] != bad:
        raise CommitbenchError(f"{bad[:12]} is not a first-parent descendant of {good[:12]}")
    policy = policy or Policy()
    progress(f"measuring {good[:12]} (good) and {bad[:12]} (bad) again, interleaved")
    ends = interleaved(lab, good, bad, processes, cases=frozenset({case}), progress=progress)
    name = _metric_of(ends[good], case, metric, good)
    _metric_of(ends[bad], case, name, bad)
    chosen = [p for p in ends[bad] if p.case == case and p.metric == name]
    unit, direction = chosen[0].unit, chosen[0].direction
    at_good, at_bad = _processes(ends[good], case, name), _processes(ends[bad], case, name)
    step = compare(at_good, at_bad, direction=direction, policy=policy, alpha=alpha)
    if step.verdict not in ("regressed", "improved"):
        ci = (
            f" [{(step.ci_low - 1) * 100:+.1f}%, {(step.ci_high - 1) * 100:+.1f}%]"
            if step.ci_low is not None and step.ci_high is not None
            else ""
        )
        raise CommitbenchError(
            f"{case} {name}: {good[:12]} and {bad[:12]} measured interleaved differ by "
            f"{step.change * 100:+.1f}%{ci} ({step.verdict}); there is no step to bisect"
        )
    progress(
        f"{case} {name}: {describe(step.base, unit)} at {good[:12]} → "
        f"{describe(step.head, unit)} at {bad[:12]}; "
        f"{plural(len(candidates), 'first-parent commit')}, "
        f"about {search.steps_needed(len(candidates))} to measure"
    )

    def judge(i: int) -> search.Probe:
        sha = candidates[i]
        fresh = lab.measure(sha, cases=frozenset({case}), again=True, processes=processes)
        mine = _processes(fresh, case, name)
        if not mine:
            raise CommitbenchError(f"{case} has no {name!r} result at {sha[:12]}")
        side = place(at_good, at_bad, mine, direction, policy, alpha)
        value = compare(at_good, mine, direction=direction, policy=policy, alpha=alpha).head
        progress(f"  {sha[:12]} {describe(value, unit)}: {side}")
        return search.Probe(i, value, side)

    first, probes = search.search(len(candidates), judge)
    stopped = None
    if first is None:
        last = probes[-1]
        sha = candidates[last.index]
        if last.side in ("outside", "between"):
            where = "outside the range" if last.side == "outside" else "between the levels"
            stopped = (
                f"{sha[:12]} measured {describe(last.value, unit)}, {where} of "
                f"{good[:12]} ({describe(step.base, unit)}) and {bad[:12]} "
                f"({describe(step.head, unit)}): more than one step, or the machine changed; "
                "no first commit is named"
            )
        else:
            stopped = (
                f"{sha[:12]} measured {describe(last.value, unit)}: its processes tell "
                f"neither level apart; measure with more --processes (now {processes}); "
                "no first commit is named"
            )
    return BisectResult(
        case,
        name,
        unit,
        tuple(candidates),
        step,
        candidates[first] if first is not None else None,
        tuple(probes),
        stopped,
    )


def place(
    good: Sequence[Process],
    bad: Sequence[Process],
    probe: Sequence[Process],
    direction: str,
    policy: Policy,
    alpha: float,
) -> str:
    """'good', 'bad', 'between', 'outside' or 'undecided': where a probe's processes lie against the
    two ends' (see the module docstring)."""
    vs_good = compare(good, probe, direction=direction, policy=policy, alpha=alpha)
    vs_bad = compare(bad, probe, direction=direction, policy=policy, alpha=alpha)
    differs_good = vs_good.p_value is not None and vs_good.p_value < alpha
    differs_bad = vs_bad.p_value is not None and vs_bad.p_value < alpha
    if differs_good and differs_bad:
        low, high = sorted((vs_good.base, vs_bad.base))
        return "between" if low <= vs_good.head <= high else "outside"
    if differs_bad:
        return "good"
    if differs_good:
        return "bad"
    return "undecided"
