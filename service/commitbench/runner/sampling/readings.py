"""What one sampler tick reads: per-GPU NVML values and the watched process tree's CPU and
memory, and how ticks become DeviceSample rows. Plain values, shared by the sampler and
the per-case summaries (energy.py) without either importing the other."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import NamedTuple

from commitbench.model.checks import measured
from commitbench.model.records import DeviceSample


class GpuReading(NamedTuple):
    gpu: int
    util_pct: float | None = None
    mem_mib: float | None = None
    power_w: float | None = None
    sm_clock_mhz: float | None = None
    temperature_c: float | None = None
    throttle_reasons: int | None = None
    energy_mj: float | None = None  # NVML's total-energy counter (mJ since driver load)


class ProcessReading(NamedTuple):
    cpu_util_pct: float | None = None  # the watched process tree; 100 = one core
    rss_mib: float | None = None
    host_cpu_util_pct: float | None = None  # the whole host, 100 = all cores


class Reading(NamedTuple):
    gpus: tuple[GpuReading, ...] = ()
    process: ProcessReading | None = None


class Tick(NamedTuple):
    time: float
    case: str | None
    reading: Reading


def merge(readings: Sequence[Reading]) -> Reading:
    gpus = tuple(g for r in readings for g in r.gpus)
    process = next((r.process for r in readings if r.process is not None), None)
    return Reading(gpus, process)


def to_device_samples(ticks: Sequence[Tick]) -> tuple[DeviceSample, ...]:
    """One row per GPU per tick; the process figures repeat on each row of a tick, so any
    row is complete on its own. Without GPUs, one row per tick with gpu_index None.

    A figure that is not a measurement (NaN, infinite, negative: a driver's glitch) is
    left out of its row (None), as the records would refuse it and the case with it."""
    rows = []
    for tick in ticks:
        when = datetime.fromtimestamp(tick.time, timezone.utc)
        proc = tick.reading.process or ProcessReading()
        cpu, rss = measured(proc.cpu_util_pct), measured(proc.rss_mib)
        if not tick.reading.gpus:
            if cpu is not None or rss is not None:
                rows.append(DeviceSample(when, None, cpu_util_pct=cpu, rss_mib=rss))
            continue
        for g in tick.reading.gpus:
            rows.append(
                DeviceSample(
                    time=when,
                    gpu_index=g.gpu,
                    gpu_util_pct=measured(g.util_pct),
                    gpu_mem_mib=measured(g.mem_mib),
                    power_w=measured(g.power_w),
                    sm_clock_mhz=measured(g.sm_clock_mhz),
                    temperature_c=measured(g.temperature_c),
                    throttle_reasons=g.throttle_reasons,
                    cpu_util_pct=cpu,
                    rss_mib=rss,
                )
            )
    return tuple(rows)
