"""Per-commit series from points: what a trend plot, `detect` and `report` draw (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from commitbench.model.points import Point, Series
from commitbench.model.records import case_matches
from commitbench.model.stats import Stats


def build(
    points: Sequence[Point],
    *,
    case: str | None = None,
    metrics: Sequence[str] = (),
    by_branch: bool = False,
) -> list[Series]:
    """One series per (case, metric, machine, profile[, branch]); a commit's runs are
    pooled and its median and 95% CI recomputed from all raw samples. Commits in
    commit-time order. Without `metrics`, timings (unit s) are kept."""
    groups: dict[tuple[str, str, str, str, str, str], dict[str, list[Point]]] = {}
    for p in points:
        if not case_matches(p.case, case):
            continue
        if (metrics and p.metric not in metrics) or (not metrics and p.unit != "s"):
            continue
        if not p.samples:
            continue
        branch = (p.branch or "") if by_branch else ""
        key = (p.repository, p.case, p.metric, p.machine, p.profile, branch)
        groups.setdefault(key, {}).setdefault(p.sha, []).append(p)
    out = []
    for (repository, case_id, metric, machine, profile, _b), by_sha in sorted(groups.items()):
        commits = sorted(by_sha.values(), key=lambda ps: ps[0].committed_at or ps[0].run_started_at)
        stats = [Stats.of([x for p in ps for x in p.samples]) for ps in commits]
        first = commits[0][0]
        out.append(
            Series(
                repository=repository,
                case=case_id,
                metric=metric,
                machine_label=first.machine_label,
                machine=machine,
                branch=first.branch if by_branch else None,
                profile=profile,
                unit=first.unit,
                direction=first.direction,
                shas=tuple(ps[0].sha for ps in commits),
                subjects=tuple(ps[0].subject or "" for ps in commits),
                times=tuple(ps[0].committed_at for ps in commits),
                medians=tuple(s.median for s in stats),
                ci_low=tuple(s.median_ci[0] if s.median_ci else None for s in stats),
                ci_high=tuple(s.median_ci[1] if s.median_ci else None for s in stats),
            )
        )
    return out
