"""The machine's state over a case, as state.* metrics (model/state.py names them).

Each metric holds one sample: the worker process's (one result is one process's
measurement of the case). Built on the orchestrator side from what it saw:

- calibration (the worker's start and end figures, harness/calibration.py), kept with
  every result of that worker once it has ended;
- load and steal from /proc at the case's start and end (host.py): the load is the mean
  of the two one-minute load averages, steal the share of CPU time stolen between them;
- on GPUs, from the sampler's NVML ticks inside the case's timed windows (the `ctx.time`
  loops the worker reported; all the case's ticks where none fell inside): the mean SM
  clock, and the share of readings with a thermal or power clock-event reason
  (THROTTLING), NVBench's reason to drop a sample; here the samples are kept and the
  case flagged, since which samples a 100 ms tick covers is not known to the sample.
  The SM clock's lowest and highest reading are properties (a clock that moves within
  a case is not locked). The bench process reads no NVML (pyproject's layering: it
  would cost the bench time).
- other processes on the case's GPUs (NVML's compute processes at the case's start and
  end, less the worker's process tree): the most seen. Inside a container without the
  host's PID namespace NVML's pids are the host's, none of them visible here: then the
  count is unknown and not recorded (sampler.NvmlBackend.other_processes).

These are context for the reader and the statistics, never a verdict; none of them is
compared as a metric of the code (model.state.is_state).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import replace

from commitbench.model import state
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import ResultRecord, Window
from commitbench.runner.launcher import ProcessState
from commitbench.runner.sampling.host import CpuTimes, steal_pct
from commitbench.runner.sampling.readings import Tick

# NVML clock-event reasons that mean thermal or power throttling (nvml.h:
# nvmlClocksEventReason*): SW power cap, HW slowdown, SW thermal, HW thermal, HW power
# brake. Idle, application clocks, sync boost and display clocks are not throttling.
THROTTLING = {
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x20: "sw_thermal",
    0x40: "hw_thermal",
    0x80: "hw_power_brake",
}
THROTTLE_MASK = sum(THROTTLING)


def _one(name: str, value: float, unit: str, direction: str, **props: object) -> MetricRecord:
    return MetricRecord.from_samples(
        name, [value], unit=unit, direction=direction, properties=dict(props)
    )


def calibration_metrics(
    start_ms: float | None, end_ms: float | None, device: str | None
) -> list[MetricRecord]:
    """The worker's calibration figures, for each result of that worker."""
    out = []
    if start_ms is not None:
        out.append(_one(state.CALIBRATION_START, start_ms, "ms", "lower", device=device))
    if end_ms is not None:
        out.append(_one(state.CALIBRATION_END, end_ms, "ms", "lower", device=device))
    return out


def host_metrics(
    load_start: float | None,
    load_end: float | None,
    times_start: CpuTimes | None,
    times_end: CpuTimes | None,
) -> list[MetricRecord]:
    """Load average and CPU steal over the case."""
    out = []
    loads = [v for v in (load_start, load_end) if v is not None]
    if loads:
        out.append(
            _one(
                state.LOAD,
                statistics.fmean(loads),
                "load",
                "lower",
                source="/proc/loadavg, mean of the 1-minute value at the case's start and end",
            )
        )
    steal = steal_pct(times_start, times_end)
    if steal is not None:
        out.append(_one(state.STEAL, steal, "%", "lower", source="/proc/stat over the case"))
    return out


def _inside(ticks: Sequence[Tick], windows: Sequence[Window]) -> list[Tick]:
    inside = [t for t in ticks if any(w.start <= t.time <= w.end for w in windows)]
    return inside or list(ticks)


def gpu_metrics(ticks: Sequence[Tick], windows: Sequence[Window] = ()) -> list[MetricRecord]:
    """Mean SM clock and the throttled share of the NVML readings over the timed loops."""
    gpus = [g for t in _inside(ticks, windows) for g in t.reading.gpus]
    clocks = [g.sm_clock_mhz for g in gpus if g.sm_clock_mhz is not None]
    reasons = [g.throttle_reasons for g in gpus if g.throttle_reasons is not None]
    out = []
    if clocks:
        out.append(
            _one(
                state.SM_CLOCK,
                statistics.fmean(clocks),
                "MHz",
                "higher",
                readings=len(clocks),
                min_mhz=min(clocks),
                max_mhz=max(clocks),
            )
        )
    if reasons:
        hit = [r for r in reasons if r & THROTTLE_MASK]
        seen = sorted({name for r in hit for bit, name in THROTTLING.items() if r & bit})
        out.append(
            _one(
                state.THROTTLED,
                len(hit) / len(reasons),
                "fraction",
                "lower",
                readings=len(reasons),
                reasons=seen,
            )
        )
    return out


def other_processes_metric(count: int | None) -> list[MetricRecord]:
    if count is None:
        return []
    return [_one(state.OTHER_GPU_PROCESSES, float(count), "processes", "lower")]


def with_calibration(result: ResultRecord, process: ProcessState | None) -> ResultRecord:
    """An ok result with its worker's calibration at start and end (state.* metrics)."""
    if result.status != "ok" or process is None:
        return result
    taken = {m.name for m in result.metrics}
    extra = calibration_metrics(
        process.calibration_start_ms, process.calibration_end_ms, process.device
    )
    return replace(result, metrics=(*result.metrics, *(m for m in extra if m.name not in taken)))
