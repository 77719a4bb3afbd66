"""From change points to findings: regression or improvement, and fixed when a later
step brings the level back; contention where the machine, not the code, moved the level
(pure functions over one series).

Commit values are single measurements of whole runs, so their scatter along the series is
the between-run noise; two rules keep that noise and a changing machine from reading as
a regression (issue 13):

- Contention. A commit measured under contention (model.state: the worker waited, wall
  over CPU time above 1.1, or the load average more than 1 above the series' median) is
  flagged and weighs nothing in the verdicts: regressions and improvements come from
  change points of the commits measured without contention. A change point of the whole
  series that those commits do not show, with flagged commits around it, is reported as
  `contention`: the level moved with the machine's state. Never saved as a regression.
  A series flagged at every commit is judged on its values: the flags then say nothing
  about where the level moved.
- Between-run noise. A step must exceed `NOISE_FACTOR` times the between-run noise of
  its neighbourhood: the robust standard deviation of successive differences of commit
  values on each side (median absolute difference / 0.6745 / sqrt 2, pooled over both
  sides, the difference across the step left out), relative to the level before. A step
  the rank test finds significant but smaller than that is dropped.

Limits: the contention flags need the state metrics (recorded since issue 13); older
history has none and is judged on values alone. A load that changes slowly over many
commits is not a step and is not flagged against the series' median until it crosses 1.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from commitbench.analysis.changepoints import ChangePoint, detect
from commitbench.analysis.series import build
from commitbench.model import state
from commitbench.model.points import Series, SeriesPoint, Step
from commitbench.model.profile import is_profile
from commitbench.model.stats import median

NOISE_FACTOR = 2.0
LOAD_MARGIN = 1.0  # load average above the series' median that counts as contention

METHOD = "rank binary segmentation + merge (commitbench.analysis.changepoints)"


@dataclass(frozen=True)
class Finding:
    index: int  # first commit of the new level
    kind: str  # "regression" or "improvement" (by the metric's direction), or "contention"
    before: float
    after: float
    change: float  # after / before - 1
    p_value: float
    fixed_by: int | None = None  # index of the later step that restored the level
    contended: int = 0  # commits measured under contention within its neighbourhood


def findings(
    values: Sequence[float],
    direction: str,
    *,
    min_effect: float = 0.05,
    p_max: float = 0.001,
    window: int = 50,
    contended: Sequence[bool] | None = None,
) -> list[Finding]:
    """Change points of one series above `min_effect` and its between-run noise,
    classified by `direction`; `contended` flags commits measured under contention (see
    the module docstring).

    A regression is `fixed_by` the first later change point whose new level is within
    `min_effect` of the level before the regression (the step was undone).
    """
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction {direction!r} is not lower or higher")
    flags = list(contended) if contended is not None else [False] * len(values)
    if len(flags) != len(values):
        raise ValueError("contended must flag every value")
    if flags and all(flags):
        # Flagged throughout (a machine always loaded, a bench that waits by itself in a
        # way the flags cannot tell apart): nothing to tell the flagged commits from, so
        # the series is judged on its values, as one without state would be.
        flags = [False] * len(flags)
    clean = [i for i, busy in enumerate(flags) if not busy]
    found = detect([values[i] for i in clean], p_max=p_max, window=window, min_effect=min_effect)
    points = [
        (clean[cp.index], cp)
        for cp in found
        if _above_noise([values[i] for i in clean], cp.index, cp.before, cp.after, window)
    ]
    out = _classified(points, direction, min_effect, flags, window)
    if any(flags):
        whole = detect(values, p_max=p_max, window=window, min_effect=min_effect)
        for cp in whole:
            near = [i for i, _ in points if abs(i - cp.index) < window // 5 + 1]
            busy = _busy(flags, cp.index, window)
            if not near and busy:
                out.append(
                    Finding(
                        cp.index,
                        "contention",
                        cp.before,
                        cp.after,
                        cp.change,
                        cp.p_value,
                        contended=busy,
                    )
                )
        out.sort(key=lambda f: f.index)
    return out


def _busy(flags: Sequence[bool], index: int, window: int) -> int:
    return sum(flags[max(0, index - window) : index + window])


def _above_noise(
    values: Sequence[float], index: int, before: float, after: float, window: int
) -> bool:
    """Whether the step exceeds NOISE_FACTOR times the neighbourhood's between-run noise."""
    left = values[max(0, index - window) : index]
    right = values[index : index + window]
    diffs = [abs(b - a) for side in (left, right) for a, b in itertools.pairwise(side)]
    if not diffs or before == 0:
        return True
    sigma = median(diffs) / 0.6745 / math.sqrt(2)
    return abs(after - before) > NOISE_FACTOR * sigma


def _classified(
    points: Sequence[tuple[int, ChangePoint]],
    direction: str,
    min_effect: float,
    flags: Sequence[bool],
    window: int,
) -> list[Finding]:
    out = []
    for i, (index, cp) in enumerate(points):
        later_points = points[i + 1 :]
        worse = cp.change > 0 if direction == "lower" else cp.change < 0
        fixed = None
        if worse and cp.before:
            for later_index, later in later_points:
                if abs(later.after / cp.before - 1) < min_effect:
                    fixed = later_index
                    break
        out.append(
            Finding(
                index,
                "regression" if worse else "improvement",
                cp.before,
                cp.after,
                cp.change,
                cp.p_value,
                fixed,
                _busy(flags, index, window),
            )
        )
    return out


def step_of(f: Finding) -> Step:
    """The finding as the regressions table keeps it."""
    return Step(f.index, f.before, f.after, f.change, f.p_value, METHOD, f.fixed_by is not None)


def contention(points: Sequence[SeriesPoint]) -> dict[tuple[str, str, str, str, str], bool]:
    """(repository, case, machine, profile, sha) -> measured under contention, from the
    state metrics among commit values (see the module docstring); a commit-level flag
    (any case of the commit on that machine and profile) stands in for a case that
    recorded no state."""
    loads: dict[tuple[str, str, str, str], list[float]] = {}
    for p in points:
        if p.metric == state.LOAD:
            loads.setdefault((p.repository, p.case, p.machine, p.profile), []).append(p.value)
    typical = {key: median(v) for key, v in loads.items()}
    # Where the threads' waiting was measured, it decides, not wall / CPU time.
    waits = {
        (p.repository, p.case, p.machine, p.profile, p.sha): p.value
        for p in points
        if p.metric == state.RUN_WAIT
    }
    out: dict[tuple[str, str, str, str, str], bool] = {}
    for p in points:
        key = (p.repository, p.case, p.machine, p.profile, p.sha)
        busy = (p.metric == state.WALL_PER_CPU and state.contended(p.value, waits.get(key))) or (
            p.metric == state.LOAD
            and p.value > typical[(p.repository, p.case, p.machine, p.profile)] + LOAD_MARGIN
        )
        if p.metric in (state.WALL_PER_CPU, state.LOAD):
            out[key] = out.get(key, False) or busy
            whole = (p.repository, "", p.machine, p.profile, p.sha)
            out[whole] = out.get(whole, False) or busy
    return out


def detect_all(
    points: Sequence[SeriesPoint],
    *,
    metrics: Sequence[str],
    min_effect: Callable[[str], float] = lambda case: 0.05,
    p_max: float = 0.001,
    window: int = 50,
) -> list[tuple[Series, Finding]]:
    """`detect` over every series of `points` (along lines of history), state metrics
    left out as series and read as contention flags."""
    flags = contention(points)
    chosen = [p for p in points if not state.is_state(p.metric) and not is_profile(p.metric)]
    out = []
    for s in build(chosen, metrics=metrics, by_line=True):
        busy = [
            flags.get(
                (s.repository, s.case, s.machine, s.profile, sha),
                flags.get((s.repository, "", s.machine, s.profile, sha), False),
            )
            for sha in s.shas
        ]
        for f in findings(
            list(s.medians),
            s.direction,
            p_max=p_max,
            window=window,
            min_effect=min_effect(s.case),
            contended=busy,
        ):
            out.append((s, f))
    return out
