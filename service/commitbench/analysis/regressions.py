"""From change points to findings: regression or improvement, and fixed when a later
step brings the level back (pure functions over one series)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from commitbench.analysis.changepoints import detect
from commitbench.model.points import Step

METHOD = "rank binary segmentation + merge (commitbench.analysis.changepoints)"


@dataclass(frozen=True)
class Finding:
    index: int  # first commit of the new level
    kind: str  # "regression" or "improvement", by the metric's direction
    before: float
    after: float
    change: float  # after / before - 1
    p_value: float
    fixed_by: int | None = None  # index of the later step that restored the level


def findings(
    values: Sequence[float],
    direction: str,
    *,
    min_effect: float = 0.05,
    p_max: float = 0.001,
    window: int = 50,
) -> list[Finding]:
    """Change points of one series above `min_effect`, classified by `direction`.

    A regression is `fixed_by` the first later change point whose new level is within
    `min_effect` of the level before the regression (the step was undone).
    """
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction {direction!r} is not lower or higher")
    points = detect(values, p_max=p_max, window=window, min_effect=min_effect)
    out = []
    for i, cp in enumerate(points):
        worse = cp.change > 0 if direction == "lower" else cp.change < 0
        fixed = None
        if worse and cp.before:
            for later in points[i + 1 :]:
                if abs(later.after / cp.before - 1) < min_effect:
                    fixed = later.index
                    break
        out.append(
            Finding(
                cp.index,
                "regression" if worse else "improvement",
                cp.before,
                cp.after,
                cp.change,
                cp.p_value,
                fixed,
            )
        )
    return out


def step_of(f: Finding) -> Step:
    """The finding as the regressions table keeps it."""
    return Step(f.index, f.before, f.after, f.change, f.p_value, METHOD, f.fixed_by is not None)
