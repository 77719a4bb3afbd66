"""The machine's state behind a commit's measurements, summarised for people to read.

`compare`, `report` and the Grafana State panel show, per case and commit, what the
recorded state.* metrics (model/state.py: one sample per worker process) say about the
machine the numbers came from:

- calibration: the median of every process's calibration figures (start and end), and
  their spread, (max - min) / median in %: the between-process spread of a fixed loop.
  Where it is large, processes differ in speed by themselves (issue 13 measured 7.4-11.3
  ms, 53%, on one H200) and a launch-bound case's time varies with them.
- contention: a process waited for a core that other work held (model.state.RUN_WAIT
  above CONTENTION_RUN_WAIT; where the kernel does not say, wall / CPU time above
  CONTENTION_WALL_PER_CPU: model.state.contended), or the hypervisor
  took more than STEAL_PCT of the CPU time while the case ran;
- throttling: the largest share of GPU readings under thermal or power clock-event
  reasons in any process (NVBench drops such samples; here they are flagged);
- other GPU processes: the most seen on the case's GPUs;
- energy per iteration's spread between the processes ((max - min) / median), with
  two or more processes: how far energy can be trusted at this commit.

Pure: points in, values and text out. It judges nothing about the code under test, and
it never changes a verdict (the statistics that use the state are analysis/compare.py's).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from commitbench.model import state
from commitbench.model.points import Point
from commitbench.model.sampled import ENERGY_PER_ITER

# Steal above this share of CPU time over a case counts as contention: a guest that
# loses 5% of its time to other guests has its timings stretched by about as much.
STEAL_PCT = 5.0


@dataclass(frozen=True)
class CaseState:
    """What the state metrics of one case at one commit (machine, profile) say."""

    sha: str
    case: str
    machine_label: str
    profile: str
    processes: int  # results that carry a calibration (one per worker process)
    calibration_ms: float | None
    calibration_spread_pct: float | None
    load: float | None
    steal_pct: float | None
    wall_per_cpu: float | None  # the largest over the processes
    throttled: float | None  # the largest fraction
    other_gpu_processes: int | None
    energy_spread_pct: float | None = None  # energy_per_iter between the processes
    run_wait: float | None = None  # the most waiting for a CPU (model.state.RUN_WAIT)

    @property
    def waited(self) -> bool:
        """A process waited for a core (model.state.contended)."""
        return state.contended(self.wall_per_cpu, self.run_wait)

    @property
    def contention(self) -> bool:
        return self.waited or (self.steal_pct is not None and self.steal_pct > STEAL_PCT)

    @property
    def flags(self) -> list[str]:
        """What a reader should know before trusting these numbers; empty: nothing."""
        out = []
        if self.waited and self.run_wait is not None:
            out.append(f"contention (waited for a CPU {self.run_wait * 100:.0f}% of the time)")
        elif self.waited:
            out.append(f"contention (wall/CPU {self.wall_per_cpu:.2f})")
        if self.steal_pct is not None and self.steal_pct > STEAL_PCT:
            out.append(f"contention (steal {self.steal_pct:.1f}%)")
        if self.throttled:
            out.append(f"throttled {self.throttled * 100:.0f}%")
        if self.other_gpu_processes:
            out.append(f"{self.other_gpu_processes} other GPU process(es)")
        return out

    def line(self) -> str:
        """One compact line: calibration, its spread, load, and the flags."""
        parts = []
        if self.calibration_ms is not None:
            spread = (
                f" spread {self.calibration_spread_pct:.1f}%"
                if self.calibration_spread_pct is not None and self.processes > 1
                else ""
            )
            parts.append(
                f"calibration {self.calibration_ms:.3g} ms{spread} "
                f"({self.processes} process{'es' if self.processes != 1 else ''})"
            )
        if self.load is not None:
            parts.append(f"load {self.load:.2f}")
        if self.steal_pct:
            parts.append(f"steal {self.steal_pct:.1f}%")
        if self.energy_spread_pct is not None:
            parts.append(f"energy/iter spread {self.energy_spread_pct:.1f}%")
        parts.extend(self.flags or ["no contention"])
        return ", ".join(parts)

    def describe(self) -> str:
        """`case @ commit: line`, as compare and the report print it."""
        return f"{self.case} @ {self.sha[:12]}: {self.line()}"

    def as_json(self) -> dict[str, object]:
        return {
            "sha": self.sha,
            "case": self.case,
            "machine": self.machine_label,
            "profile": self.profile,
            "processes": self.processes,
            "calibration_ms": self.calibration_ms,
            "calibration_spread_pct": self.calibration_spread_pct,
            "load": self.load,
            "steal_pct": self.steal_pct,
            "wall_per_cpu": self.wall_per_cpu,
            "run_wait": self.run_wait,
            "throttled_fraction": self.throttled,
            "other_gpu_processes": self.other_gpu_processes,
            "energy_spread_pct": self.energy_spread_pct,
            "contention": self.contention,
        }


def spread_pct(values: Sequence[float]) -> float | None:
    """(max - min) / median in %: None for fewer than two values or a median of 0."""
    if len(values) < 2:
        return None
    mid = statistics.median(values)
    return None if mid <= 0 else 100.0 * (max(values) - min(values)) / mid


def _samples(points: Iterable[Point], *names: str) -> list[float]:
    return [s for p in points if p.metric in names for s in p.samples]


def case_states(points: Iterable[Point], order: Sequence[str] = ()) -> list[CaseState]:
    """One CaseState per (commit, case, machine, profile) that has state metrics: by
    case, then in the order of the commits in `order` (compare's base, head), else in
    the order first seen."""
    groups: dict[tuple[str, str, str, str], list[Point]] = {}
    energy: dict[tuple[str, str, str, str], list[float]] = {}
    for p in points:
        key = (p.sha, p.case, p.machine, p.profile)
        if state.is_state(p.metric):
            groups.setdefault(key, []).append(p)
        elif p.metric == ENERGY_PER_ITER:
            energy.setdefault(key, []).extend(p.samples)
    out = []
    for key, mine in groups.items():
        sha, case, _, profile = key
        calib = _samples(mine, state.CALIBRATION_START, state.CALIBRATION_END)
        starts = [p for p in mine if p.metric == state.CALIBRATION_START]
        loads = _samples(mine, state.LOAD)
        steal = _samples(mine, state.STEAL)
        ratio = _samples(mine, state.WALL_PER_CPU)
        waits = _samples(mine, state.RUN_WAIT)
        throttled = _samples(mine, state.THROTTLED)
        others = _samples(mine, state.OTHER_GPU_PROCESSES)
        out.append(
            CaseState(
                sha=sha,
                case=case,
                machine_label=mine[0].machine_label,
                profile=profile,
                processes=sum(len(p.samples) for p in starts),
                calibration_ms=statistics.median(calib) if calib else None,
                calibration_spread_pct=spread_pct(calib),
                load=statistics.fmean(loads) if loads else None,
                steal_pct=max(steal) if steal else None,
                wall_per_cpu=max(ratio) if ratio else None,
                throttled=max(throttled) if throttled else None,
                other_gpu_processes=int(max(others)) if others else None,
                energy_spread_pct=spread_pct(energy.get(key, [])),
                run_wait=max(waits) if waits else None,
            )
        )
    if order:
        rank = {sha: i for i, sha in enumerate(order)}
        out.sort(key=lambda s: (s.case, rank.get(s.sha, len(rank))))
    return out
