"""Series of commit values: what a trend plot, `detect` and `report` draw (pure).

A series is one (repository, case, metric, machine, profile); its points are commit
values (model.points.SeriesPoint: every run of the commit counts), in commit-time
order. `detect` splits a series further into lines of history (`lines`), one per
branch, so a feature branch's commits do not interleave with main's.
"""

from __future__ import annotations

from collections.abc import Sequence

from commitbench.model.cases import case_matches
from commitbench.model.points import Series, SeriesPoint, series_order

Line = str | None  # a branch name, or None for commits no branch reaches


def selected(p: SeriesPoint, case: str | None, metrics: Sequence[str]) -> bool:
    """The points a command draws: matching cases; the metrics asked for, else timings."""
    if not case_matches(p.case, case):
        return False
    return p.metric in metrics if metrics else p.unit == "s"


def lines(points: Sequence[SeriesPoint]) -> dict[tuple[str, str], tuple[Line, ...]]:
    """(repository, sha) -> the lines of history the commit belongs to.

    A commit belongs to the line of every branch its runs recorded. A commit whose runs
    recorded none (a backfill with `run A..B` of shas, `run v1.2`) belongs to the line
    of each branch from whose commits it is reached by following first parents through
    recorded commits that recorded no branch either; commits no branch reaches form the
    line None. So a branchless backfill of main's history and main's nightly runs are
    one series once the nightly commits' first parents lead into the backfill.
    """
    by_repo: dict[str, dict[str, tuple[str | None, set[str]]]] = {}
    for p in points:
        commits = by_repo.setdefault(p.repository, {})
        parent, branches = commits.get(p.sha, (p.first_parent, set()))
        branches.update(p.branches)
        commits[p.sha] = (parent, branches)
    out: dict[tuple[str, str], tuple[Line, ...]] = {}
    for repository, commits in by_repo.items():
        found: dict[str, set[str]] = {sha: set(b) for sha, (_, b) in commits.items()}
        for first_parent, branches in commits.values():
            if not branches:
                continue
            # Down the first parents while they are recorded and name no branch.
            parent, seen = first_parent, set()
            while parent in commits and parent not in seen and not commits[parent][1]:
                seen.add(parent)
                found[parent].update(branches)
                parent = commits[parent][0]
        for sha, names in found.items():
            out[(repository, sha)] = tuple(sorted(names)) or (None,)
    return out


def build(
    points: Sequence[SeriesPoint],
    *,
    case: str | None = None,
    metrics: Sequence[str] = (),
    by_line: bool = False,
) -> list[Series]:
    """One series per (repository, case, metric, machine, profile), or with `by_line`
    per line of history too (`lines`). Commits in commit-time order. Without `metrics`,
    timings (unit s) are kept."""
    chosen = [p for p in points if selected(p, case, metrics)]
    where = lines(chosen) if by_line else {}
    groups: dict[tuple[str, str, str, str, str, str, str, str], list[SeriesPoint]] = {}
    for p in chosen:
        for line in where.get((p.repository, p.sha), (None,)):
            key = (*p.series, p.unit, p.direction, line or "")
            groups.setdefault(key, []).append(p)
    out = []
    for key, ps in sorted(groups.items()):
        ps.sort(key=series_order)
        first = ps[0]
        out.append(
            Series(
                repository=first.repository,
                case=first.case,
                metric=first.metric,
                machine_label=first.machine_label,
                machine=first.machine,
                branch=key[-1] or None,
                profile=first.profile,
                unit=first.unit,
                direction=first.direction,
                shas=tuple(p.sha for p in ps),
                subjects=tuple(p.subject or "" for p in ps),
                times=tuple(p.committed_at for p in ps),
                medians=tuple(p.value for p in ps),
                ci_low=tuple(p.ci_low for p in ps),
                ci_high=tuple(p.ci_high for p in ps),
                runs=tuple(p.runs for p in ps),
            )
        )
    return out
