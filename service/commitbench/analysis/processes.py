"""From recorded points to the unit of the statistics: the worker process.

Each result-level point holds the samples of one or more worker processes
(MetricRecord.processes); `processes_of` splits them into `Process` values, each with
the machine state the model uses: its calibration (the loop timed around the case where
recorded, else at the worker's start and end; model/state.py) and whether its timed calls
waited for a core. analysis/compare.py and analysis/gate.py (bisect's probes) compare
these.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from commitbench.model import state
from commitbench.model.points import Point

Key = tuple[str, str, str, str, str, str]  # machine, profile, case, metric, unit, direction


@dataclass(frozen=True)
class Process:
    """The samples of one worker process (the unit of repetition) and, where recorded,
    its calibration (model.state, milliseconds)."""

    samples: tuple[float, ...]
    calibration: float | None = None
    contended: bool = False  # waited for a core (model.state.CONTENTION_WALL_PER_CPU)
    host_timed: bool = False  # its samples are host time (model.state.WALL_PER_CPU recorded)


def calibrations(points: Sequence[Point]) -> dict[tuple[object, str, int], float]:
    """Each process's calibration, keyed by (run, case, process): the one timed around
    the case where recorded (model.state.CALIBRATION_CASE), else the mean of the
    worker's calibration at its start and its end."""
    found: dict[tuple[object, str, int], list[float]] = {}
    around: dict[tuple[object, str, int], list[float]] = {}
    for p in points:
        if p.metric in (state.CALIBRATION_START, state.CALIBRATION_END):
            into = found
        elif p.metric == state.CALIBRATION_CASE:
            into = around
        else:
            continue
        for process, values in p.by_process().items():
            into.setdefault((p.run_id, p.case, process), []).extend(values)
    out = {k: statistics.fmean(v) for k, v in found.items() if v}
    out.update({k: statistics.fmean(v) for k, v in around.items() if v})
    return out


def contended(points: Sequence[Point]) -> set[tuple[object, str, int]]:
    """The processes, keyed like `calibrations`, whose timed calls waited for a core
    (model.state.contended: the threads' measured waiting, else wall / CPU time)."""
    ratios: dict[tuple[object, str, int], float] = {}
    waits: dict[tuple[object, str, int], float] = {}
    for p in points:
        into = {state.WALL_PER_CPU: ratios, state.RUN_WAIT: waits}.get(p.metric)
        if into is None:
            continue
        for process, values in p.by_process().items():
            if values:
                into[(p.run_id, p.case, process)] = max(values)
    return {
        at for at in ratios.keys() | waits.keys() if state.contended(ratios.get(at), waits.get(at))
    }


def host_timed(points: Sequence[Point]) -> set[tuple[object, str, int]]:
    """The processes, keyed like `calibrations`, whose case was timed on the host (the
    worker recorded its wall over CPU time): their calibration is the CPU loop's, and
    it measures what slows the case."""
    return {
        (p.run_id, p.case, process)
        for p in points
        if p.metric == state.WALL_PER_CPU
        for process in p.by_process()
    }


def processes_of(points: Sequence[Point]) -> dict[Key, list[Process]]:
    """The processes behind each (machine, profile, case, metric) of `points`, with
    their calibrations; state metrics are not compared."""
    cal = calibrations(points)
    waited = contended(points)
    on_host = host_timed(points)
    out: dict[Key, list[Process]] = {}
    for p in points:
        if state.is_state(p.metric) or not p.samples:
            continue
        key = (p.machine, p.profile, p.case, p.metric, p.unit, p.direction)
        for process, samples in p.by_process().items():
            at = (p.run_id, p.case, process)
            out.setdefault(key, []).append(
                Process(samples, cal.get(at), at in waited, at in on_host)
            )
    return out
