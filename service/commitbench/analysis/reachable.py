"""Is the policy reachable? The smallest change that k processes per side can call at a
recorded spread between processes, and the one-line warning of `run` and `check` when
the minimum effect is out of reach (issue 13, item 6: "`run` and `check` warn when the
recorded noise makes the policy unreachable").

Apart from analysis/compare.py because it judges the machine's noise against a policy
before any comparison, not two commits.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from commitbench.analysis import twolevel
from commitbench.analysis.compare import DEFAULT_ALPHA, Policies, Policy, statistic_of
from commitbench.model import state
from commitbench.model.profile import is_profile
from commitbench.model.records import ResultRecord
from commitbench.model.words import plural


@dataclass(frozen=True)
class Unreachable:
    """A case's metric whose between-process spread keeps `processes` per side from
    deciding a change of the policy's size."""

    case: str
    metric: str
    spread: float  # a fraction, as Comparison.spread
    processes: int
    needed: int | None  # processes per side that would, up to twolevel.MAX_MORE
    policy: Policy


def detectable(spread: float, processes: int, alpha: float = DEFAULT_ALPHA) -> float:
    """The smallest change (a fraction) that `processes` per side can call significant
    at this between-process spread (Welch's t with equal spreads and counts)."""
    if processes < 2:
        return math.inf
    q = twolevel.t_quantile(1 - alpha / 2, 2 * processes - 2)
    return math.expm1(q * math.log1p(spread) * math.sqrt(2 / processes))


def spread_of(by_process: Mapping[int, Sequence[float]], statistic: str) -> float | None:
    """The between-process spread of one result (a fraction; None under 2 processes or
    with values at or below zero)."""
    values = [statistic_of(v, statistic) for v in by_process.values() if v]
    if len(values) < 2 or any(v <= 0 for v in values):
        return None
    return math.expm1(statistics.stdev(math.log(v) for v in values))


def result_spreads(
    results: Sequence[ResultRecord], policies: Policies, processes: int
) -> list[tuple[str, str, float, int]]:
    """(case, metric, spread, processes) of every ok result measured in 2+ processes."""
    out = []
    for r in results:
        for m in r.metrics if r.status == "ok" else ():
            spread = spread_of(m.by_process(), policies.for_case(r.case.label).statistic)
            if spread is not None:
                out.append((r.case.label, m.name, spread, processes))
    return out


def unreachable(
    spreads: Sequence[tuple[str, str, float, int]],
    policies: Policies,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> list[Unreachable]:
    """Of (case, metric, spread, processes per side), those whose policy cannot be
    decided, worst first."""
    out = []
    for case, metric, spread, processes in spreads:
        policy = policies.for_case(case)
        if (
            state.is_state(metric)
            or is_profile(metric)
            or detectable(spread, processes, alpha) < policy.threshold
        ):
            continue
        needed = next(
            (
                n
                for n in range(processes + 1, processes + twolevel.MAX_MORE + 1)
                if detectable(spread, n, alpha) < policy.threshold
            ),
            None,
        )
        out.append(Unreachable(case, metric, spread, processes, needed, policy))
    out.sort(key=lambda u: -u.spread)
    return out


def unreachable_line(found: Sequence[Unreachable]) -> str | None:
    """The one-line warning of `run` and `check`, or None when there is nothing to say."""
    if not found:
        return None
    worst = found[0]
    needs = (
        f"about {worst.needed} processes per side"
        if worst.needed is not None
        else "a quieter machine"
    )
    return (
        f"the spread between processes makes {worst.policy} unreachable for "
        f"{plural(len(found), 'case metric')} with {worst.processes} processes per side "
        f"(worst: {worst.case} {worst.metric} ±{worst.spread * 100:.1f}%, needs {needs}); "
        "see commitbench doctor"
    )
