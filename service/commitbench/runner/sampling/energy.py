"""Per-case summaries of sampler ticks: utilization, memory, power, energy.

Energy integrates sampled power with the trapezoidal rule, the power signal taken as
piecewise linear between ticks and constant beyond the first and last tick. The case's
`energy` spans its first to its last tick; `energy_per_iter` integrates over the timed
windows the worker reported (warm-up and repeats of each `ctx.time`) and divides by the
calls made in them, so set-up outside the timed loops is not charged to an iteration.
With ticks every 100 ms, windows much shorter than that are estimates: the metric's
`ticks_in_windows` property says how many ticks fell inside.

Levels and rates. A tick reads levels at its instant (GPU memory, RSS) and rates over a
span before it (the CPU % of psutil, since its previous call; NVML's GPU utilization,
over its own sample period of 1/6 s to 1 s; NVML's power, averaged over the last second
on Ampere and newer GPUs). A case's first tick comes after a tick taken before the case
started (in the previous case, or between cases), so its rates describe mostly what ran
before: rate summaries (gpu_util, gpu_power, cpu_util, host_cpu_util) use the case's
ticks after its first, level summaries all of them. So a "sub-tick" case, one with fewer
than two ticks, gets no rate summary; one with none gets no summary at all (and the
sampler adds none to a case that was not ok).

Across GPUs, utilization and memory are taken over every GPU's rows (a case that uses one
of eight GPUs shows an eighth of its utilization: restrict NvmlBackend(indices=...) to the
GPUs the worker may use), and energy is the sum over GPUs.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

from commitbench.model.checks import measured
from commitbench.model.records import MetricRecord, Window
from commitbench.runner.sampling.readings import Tick


def _at(times: Sequence[float], values: Sequence[float], t: float) -> float:
    """Piecewise-linear value at t, constant outside the sampled span."""
    if t <= times[0]:
        return values[0]
    if t >= times[-1]:
        return values[-1]
    i = bisect.bisect_right(times, t)
    t0, t1 = times[i - 1], times[i]
    return values[i - 1] + (values[i] - values[i - 1]) * (t - t0) / (t1 - t0)


def integrate(times: Sequence[float], values: Sequence[float], start: float, end: float) -> float:
    """Integral of the piecewise-linear signal over [start, end] (trapezoidal rule)."""
    if not times or end <= start:
        return 0.0
    points = [start, *(t for t in times if start < t < end), end]
    total = 0.0
    for a, b in itertools.pairwise(points):
        total += (b - a) * (_at(times, values, a) + _at(times, values, b)) / 2.0
    return total


def _power_series(ticks: Sequence[Tick]) -> dict[int, tuple[list[float], list[float]]]:
    series: dict[int, tuple[list[float], list[float]]] = {}
    for tick in ticks:
        for g in tick.reading.gpus:
            power = measured(g.power_w)  # a glitch's NaN would make the energy NaN
            if power is not None:
                times, watts = series.setdefault(g.gpu, ([], []))
                times.append(tick.time)
                watts.append(power)
    return series


def summarize(ticks: Sequence[Tick], windows: Sequence[Window] = ()) -> tuple[MetricRecord, ...]:
    """The case's sampler metrics (`ticks` in time order, all taken while the case ran);
    none for a quantity that was never read, rates only from the ticks after the first."""
    gpus = [g for t in ticks for g in t.reading.gpus]
    procs = [t.reading.process for t in ticks if t.reading.process is not None]
    # Rates: only ticks whose whole interval since the previous tick lies inside the case.
    rate_gpus = [g for t in ticks[1:] for g in t.reading.gpus]
    rate_procs = [t.reading.process for t in ticks[1:] if t.reading.process is not None]
    out = []

    def add(name: str, values: list[float | None], unit: str, direction: str) -> None:
        present = [m for m in map(measured, values) if m is not None]
        if present:
            # Summaries only: the ticks themselves are in device_samples.
            out.append(
                MetricRecord.from_samples(
                    name, present, unit=unit, direction=direction, keep_samples=False
                )
            )

    add("gpu_util", [g.util_pct for g in rate_gpus], "%", "higher")
    add("gpu_mem", [g.mem_mib for g in gpus], "MiB", "lower")
    add("gpu_power", [g.power_w for g in rate_gpus], "W", "lower")
    add("cpu_util", [p.cpu_util_pct for p in rate_procs], "%", "lower")
    add("rss", [p.rss_mib for p in procs], "MiB", "lower")
    add("host_cpu_util", [p.host_cpu_util_pct for p in rate_procs], "%", "lower")

    series = _power_series(ticks)
    if series and all(len(times) >= 2 for times, _ in series.values()):
        first = min(times[0] for times, _ in series.values())
        last = max(times[-1] for times, _ in series.values())
        joules = sum(integrate(t, w, first, last) for t, w in series.values())
        out.append(
            MetricRecord.from_samples(
                "energy", [joules], unit="J", direction="lower", properties={"gpus": len(series)}
            )
        )
        calls = sum(w.calls for w in windows)
        if calls:
            in_windows = sum(
                integrate(t, w, win.start, win.end) for t, w in series.values() for win in windows
            )
            inside = sum(
                1 for tick in ticks for win in windows if win.start <= tick.time <= win.end
            )
            out.append(
                MetricRecord.from_samples(
                    "energy_per_iter",
                    [in_windows / calls],
                    unit="J",
                    direction="lower",
                    properties={"calls": calls, "ticks_in_windows": inside},
                )
            )
    return tuple(out)
