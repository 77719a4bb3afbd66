"""Bisection of a performance step: pure decisions, the caller measures.

A probe is on the BAD side when its value is closer to BAD's level than to GOOD's on a
log scale (a 10% slowdown and its reversal weigh the same). This assumes one step between
GOOD and BAD, as git bisect does; with several, it finds one of them. `search` takes a
judge that may refuse to place a probe (analysis.gate.bisect: a probe outside the ends'
range or one its processes cannot place), and then names no commit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def side(value: float, good: float, bad: float) -> str:
    """'good' or 'bad': which end's level the value is closer to (log distance)."""
    if min(value, good, bad) <= 0:
        raise ValueError("bisection needs positive values")
    return "bad" if abs(math.log(value / bad)) < abs(math.log(value / good)) else "good"


@dataclass(frozen=True)
class Probe:
    index: int
    value: float
    side: str


def bisect(
    count: int, good: float, bad: float, measure: Callable[[int], float]
) -> tuple[int, list[Probe]]:
    """First bad index among candidates 0..count-1, where count-1 is BAD itself.

    `measure(i)` gives candidate i's value; about log2(count) probes are taken.
    """
    if count < 1:
        raise ValueError("nothing to bisect")
    lo, hi = -1, count - 1  # lo: last known good (-1 = GOOD), hi: first known bad
    probes: list[Probe] = []
    while hi - lo > 1:
        mid = (lo + hi) // 2
        value = measure(mid)
        probes.append(Probe(mid, value, side(value, good, bad)))
        if probes[-1].side == "bad":
            hi = mid
        else:
            lo = mid
    return hi, probes


def search(count: int, judge: Callable[[int], Probe]) -> tuple[int | None, list[Probe]]:
    """First bad index among candidates 0..count-1 (count-1 is BAD itself), where
    `judge(i)` measures candidate i and places it: 'good' or 'bad' continue the search;
    any other side stops it, and then no index is named (None)."""
    if count < 1:
        raise ValueError("nothing to bisect")
    lo, hi = -1, count - 1
    probes: list[Probe] = []
    while hi - lo > 1:
        mid = (lo + hi) // 2
        probe = judge(mid)
        probes.append(probe)
        if probe.side == "bad":
            hi = mid
        elif probe.side == "good":
            lo = mid
        else:
            return None, probes
    return hi, probes


def steps_needed(count: int) -> int:
    return math.ceil(math.log2(count)) if count > 1 else 0


__all__: Sequence[str] = ("Probe", "bisect", "search", "side", "steps_needed")
