"""Per-case summaries of sampler ticks: utilization, memory, power, energy.

Energy comes from NVML's total-energy counter (nvmlDeviceGetTotalEnergyConsumption,
millijoules since the driver loaded; Volta and newer) where every GPU reports it, else
from sampled power integrated with the trapezoidal rule (the signal piecewise linear
between ticks, constant beyond the first and last). The `source` property says which.
The case's `energy` spans its first to its last tick (set-up included); `energy_per_iter`
counts only the timed windows the worker reported (warm-up and repeats of each
`ctx.time`), divided by the calls made in them: the counter read at each tick is a
cumulative integral, so its value at a window's start and end is interpolated linearly
between the ticks around them.

The counter moves in steps (perf/energy_window.py measures its update period and the
spread of energy per iteration over windows of 0.5 to 5 s); a window shorter than
MIN_COUNTER_WINDOW_S is read with an error of a step or more at each end (on an H200:
steps every 100 ms; energy per iteration spread 26%, 11%, 0.8%, 0.6% over windows of
0.5, 1, 2, 5 s; perf/results/h200-machine-state/energy_window.txt). So
`energy_per_iter` carries `window_s` (the timed windows' length), and energy metrics
carry `"gates": false` unless they are per iteration from the counter over at least
MIN_COUNTER_WINDOW_S, for whoever reads the records. The gate (analysis/gate.py) reads
no metric properties: it goes by model/sampled.py, where every summary made here is
never decisive and `energy_per_iter` is decisive only when its interval between
processes is narrower than the policy's minimum effect. Issue 13 saw
energy per iteration move by -13% to +58% between runs of one commit from power ticks,
and 13-25% from the counter over 0.65 s windows; its between-process spread is in
`compare`'s machine-state lines.

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
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import Window
from commitbench.runner.sampling.readings import Tick

# The shortest timed window over which energy per iteration from NVML's counter may
# count (perf/energy_window.py: see its output in perf/results/ for the step period and
# the spread per window length).
MIN_COUNTER_WINDOW_S = 2.0


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


def _counter_series(ticks: Sequence[Tick]) -> dict[int, tuple[list[float], list[float]]]:
    """Per GPU, the ticks' times and the total-energy counter in joules."""
    series: dict[int, tuple[list[float], list[float]]] = {}
    for tick in ticks:
        for g in tick.reading.gpus:
            if g.energy_mj is not None:
                times, joules = series.setdefault(g.gpu, ([], []))
                times.append(tick.time)
                joules.append(g.energy_mj / 1000.0)
    return series


def _counter_energy(
    series: dict[int, tuple[list[float], list[float]]], windows: Sequence[Window]
) -> tuple[float, float]:
    """Joules over the whole span, and inside the windows (the counter interpolated)."""
    whole = sum(j[-1] - j[0] for _, j in series.values())
    inside = sum(
        max(0.0, _at(t, j, win.end) - _at(t, j, win.start))
        for t, j in series.values()
        for win in windows
    )
    return whole, inside


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
    out.extend(_energy(ticks, windows))
    return tuple(out)


def _energy(ticks: Sequence[Tick], windows: Sequence[Window]) -> list[MetricRecord]:
    """`energy` and `energy_per_iter`, from the counter where every GPU has two readings
    of it, else from power; see the module docstring."""
    counter = _counter_series(ticks)
    power = _power_series(ticks)
    gpus = {g.gpu for t in ticks for g in t.reading.gpus}
    if counter and set(counter) == gpus and all(len(t) >= 2 for t, _ in counter.values()):
        source = "nvml_total_energy"
        joules, in_windows = _counter_energy(counter, windows)
        gpu_count = len(counter)
    elif power and all(len(times) >= 2 for times, _ in power.values()):
        source = "power_integral"
        first = min(times[0] for times, _ in power.values())
        last = max(times[-1] for times, _ in power.values())
        joules = sum(integrate(t, w, first, last) for t, w in power.values())
        in_windows = sum(
            integrate(t, w, win.start, win.end) for t, w in power.values() for win in windows
        )
        gpu_count = len(power)
    else:
        return []
    out = [
        MetricRecord.from_samples(
            "energy",
            [joules],
            unit="J",
            direction="lower",
            properties={"gpus": gpu_count, "source": source, "gates": False},
        )
    ]
    calls = sum(w.calls for w in windows)
    if calls:
        inside = sum(1 for tick in ticks for win in windows if win.start <= tick.time <= win.end)
        window_s = sum(w.end - w.start for w in windows)
        props: dict[str, object] = {
            "calls": calls,
            "ticks_in_windows": inside,
            "window_s": window_s,
            "source": source,
        }
        if source != "nvml_total_energy" or window_s < MIN_COUNTER_WINDOW_S:
            props["gates"] = False
        out.append(
            MetricRecord.from_samples(
                "energy_per_iter",
                [in_windows / calls],
                unit="J",
                direction="lower",
                properties=props,
            )
        )
    return out
