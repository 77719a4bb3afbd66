"""`explain`: what changed between two profiles of one case, normalised per iteration.

The two operator/kernel tables (model/profile.py) are joined by name. Structural changes
come first because they are exact: a name that appears or vanishes, or whose calls per
iteration changed, is a change in the code's work, not noise. Among them, and then among
the names whose time alone moved, the largest change in seconds per iteration leads. A
time-only change smaller than `noise` of the name's own time (default 10%) or smaller
than 1% of the larger table's total is not listed: one profile of a few iterations does
not resolve less, and the timed metrics (compare, check) are where speed is judged.

Also: category shares before and after, the launch (CUDA) or operator-call (CPU) count
per iteration, host time against device time, and on CUDA the memory peak with the
allocation sites that grew.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from commitbench.model import profile as p

NOISE = 0.10  # a time-only change below this share of the name's time is not listed
FLOOR = 0.01  # ... nor one below this share of the larger table's total

STATUSES = ("new", "vanished", "calls", "slower", "faster")


@dataclass(frozen=True)
class Change:
    name: str
    category: str
    status: str  # one of STATUSES: "calls" = calls per iteration changed
    base_s: float  # seconds per iteration (0 when absent)
    head_s: float
    base_calls: float
    head_calls: float

    @property
    def delta_s(self) -> float:
        return self.head_s - self.base_s

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "status": self.status,
            "base_s": self.base_s,
            "head_s": self.head_s,
            "delta_s": self.delta_s,
            "base_calls": self.base_calls,
            "head_calls": self.head_calls,
        }


@dataclass(frozen=True)
class Counter:
    """A `profile.*` value at both commits (None where one has none)."""

    metric: str
    base: float | None
    head: float | None

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "base": self.base, "head": self.head}


@dataclass(frozen=True)
class Explanation:
    source: str  # "cpu" (operators' self time) or "cuda" (kernels' device time)
    base_total_s: float
    head_total_s: float
    changes: tuple[Change, ...]  # structural first, then time-only; largest first
    shares: tuple[tuple[str, float, float], ...]  # category, base, head (0..1)
    counters: tuple[Counter, ...]
    sites: tuple[tuple[str, float, float], ...]  # site, base MiB, head MiB: grown first
    unchanged: int  # names in both tables not listed

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "base_total_s": self.base_total_s,
            "head_total_s": self.head_total_s,
            "changes": [c.to_json() for c in self.changes],
            "shares": [{"category": c, "base": b, "head": h} for c, b, h in self.shares],
            "counters": [c.to_json() for c in self.counters],
            "memory_sites": [{"site": s, "base_mib": b, "head_mib": h} for s, b, h in self.sites],
            "unchanged": self.unchanged,
        }


COUNTERS = (
    p.TIME_PER_ITER,
    p.HOST_PER_ITER,
    p.DEVICE_PER_ITER,
    p.HOST_OVER_DEVICE,
    p.LAUNCHES_PER_ITER,
    p.OPS_PER_ITER,
    p.PEAK_ALLOCATED,
    p.PEAK_RESERVED,
)


def explain(
    base: p.Profile, head: p.Profile, *, noise: float = NOISE, floor: float = FLOOR
) -> Explanation:
    """The difference from `base` to `head` (see the module's docstring)."""
    if base.table.source != head.table.source:
        raise ValueError(
            f"the profiles differ in kind ({base.table.source} at base, "
            f"{head.table.source} at head): compare profiles from one machine"
        )
    before = {r.name: r for r in base.table.rows}
    after = {r.name: r for r in head.table.rows}
    scale = max(base.table.total_s, head.table.total_s)
    structural: list[Change] = []
    timed: list[Change] = []
    unchanged = 0
    for name in sorted(set(before) | set(after)):
        b, h = before.get(name), after.get(name)
        change = Change(
            name=name,
            category=(h or b).category,  # type: ignore[union-attr]
            status="",
            base_s=b.time_s if b else 0.0,
            head_s=h.time_s if h else 0.0,
            base_calls=b.calls if b else 0.0,
            head_calls=h.calls if h else 0.0,
        )
        if b is None or h is None:
            status = "new" if b is None else "vanished"
            structural.append(_with(change, status))
        elif abs(h.calls - b.calls) > 1e-9:
            structural.append(_with(change, "calls"))
        elif abs(change.delta_s) > max(noise * b.time_s, floor * scale):
            timed.append(_with(change, "slower" if change.delta_s > 0 else "faster"))
        else:
            unchanged += 1
    ordered = sorted(structural, key=_size) + sorted(timed, key=_size)
    bs, hs = base.table.shares(), head.table.shares()
    shares = tuple((c, bs[c], hs[c]) for c in p.CATEGORIES if bs[c] or hs[c])
    counters = tuple(
        Counter(m, base.values.get(m), head.values.get(m))
        for m in COUNTERS
        if m in base.values or m in head.values
    )
    sites = tuple(
        sorted(
            (
                (s, base.sites.get(s, 0.0), head.sites.get(s, 0.0))
                for s in set(base.sites) | set(head.sites)
            ),
            key=lambda t: (-(t[2] - t[1]), t[0]),
        )
    )
    return Explanation(
        source=head.table.source,
        base_total_s=base.table.total_s,
        head_total_s=head.table.total_s,
        changes=tuple(ordered),
        shares=shares,
        counters=counters,
        sites=sites,
        unchanged=unchanged,
    )


def _with(change: Change, status: str) -> Change:
    return Change(
        change.name,
        change.category,
        status,
        change.base_s,
        change.head_s,
        change.base_calls,
        change.head_calls,
    )


def _size(change: Change) -> tuple[float, str]:
    return (-abs(change.delta_s), change.name)


@dataclass(frozen=True)
class Candidate:
    """A profile found for a commit: which machine and run it came from."""

    machine: str  # fingerprint
    profile: str  # smoke or full
    started_at: float  # the run's start, as a POSIX timestamp (newest wins)
    run_id: str
    data: p.Profile


def pair(
    base: Sequence[Candidate], head: Sequence[Candidate]
) -> tuple[Candidate, Candidate] | None:
    """The newest head profile that has a base profile of the same machine and bench
    profile, with that base profile's newest; None when no such pair exists."""
    for h in sorted(head, key=lambda c: -c.started_at):
        same = [
            b
            for b in base
            if (b.machine, b.profile, b.data.table.source)
            == (h.machine, h.profile, h.data.table.source)
        ]
        if same:
            return max(same, key=lambda c: c.started_at), h
    return None
