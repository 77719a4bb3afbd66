"""The spread between runs of each case, learnt from its history (issue 13).

A comparison of two commits measured in one process each has no spread of its own, and
the two-level model (analysis/twolevel.py) calls it `ambiguous`. Nightly runs are often
like that, while the same case was measured at other commits in several processes (a
`check`, a `compare --measure`, a `run --processes k`) or in several runs. Those repeats
at one commit are the noise between runs on this machine and profile: the pooled
variance of the log per-process values within each such commit (the value of a process
is the policy's statistic of its samples, as in the comparison), with the sum of n - 1
as its degrees of freedom, is a `twolevel.Prior`. It stands in only where a comparison
has one process on each side, and only with at least twolevel.MIN_PRIOR_DF degrees of
freedom.

Pure: points in, priors out; the caller reads the history (cli/compare.py reads it only
for the cases that need one).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from commitbench.analysis.compare import Policies, statistic_of
from commitbench.analysis.processes import Key
from commitbench.analysis.twolevel import Prior
from commitbench.model import state
from commitbench.model.points import Point
from commitbench.model.profile import is_profile


def priors(points: Sequence[Point], policies: Policies) -> dict[Key, Prior]:
    """The between-run spread of every (machine, profile, case, metric) in `points`
    that was measured more than once at some commit."""
    logs: dict[Key, dict[str, list[float]]] = {}
    for p in points:
        if state.is_state(p.metric) or is_profile(p.metric) or not p.samples:
            continue
        key = (p.machine, p.profile, p.case, p.metric, p.unit, p.direction)
        name = policies.for_case(p.case).statistic
        at = logs.setdefault(key, {}).setdefault(p.sha, [])
        for samples in p.by_process().values():
            value = statistic_of(samples, name) if samples else 0.0
            if value > 0:
                at.append(math.log(value))
    out: dict[Key, Prior] = {}
    for key, commits in logs.items():
        ss, df, used = 0.0, 0, 0
        for values in commits.values():
            if len(values) >= 2:
                mean = statistics.fmean(values)
                ss += sum((v - mean) ** 2 for v in values)
                df += len(values) - 1
                used += 1
        if df > 0 and ss > 0:
            out[key] = Prior(ss / df, df, used)
    return out
