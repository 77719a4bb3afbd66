"""The per-process calibration: a fixed loop, timed when a worker starts and when it ends.

On a GPU: 1,000 tiny in-place adds (`x.add_(1)` on a one-element tensor), launched
back to back and synchronised once, after 100 untimed launches: the loop costs almost
nothing on the device, so its time is the host's launch path (driver, CPU clock and
placement, the process's memory layout). Issue 13 measured it at 7.4-11.3 ms on one
H200 depending on the process, and stable within it; a launch-bound case's time follows
it. On a CPU: a fixed integer loop of `CPU_LOOP` steps in the interpreter, which follows
the core's clock, its placement and what else runs on it.

Each is timed `REPEATS` times and the median kept (milliseconds), so one preemption does
not make a process look slow. The worker sends the start figure before its first case
and the end figure after its last (harness/worker.py); the runner keeps both with every
result of that worker (model/state.py: state.calibration_start_ms, _end_ms), so a
process whose state differs from its peers, or drifted while it ran, can be seen.

GPU or CPU: the GPU loop runs where CUDA is available and the bench module imported
torch or one of its planned benches requires CUDA (a worker started with `--device cpu`
always calibrates on the CPU); the end calibration runs where the start one did. The
calibration, not the bench, then initialised CUDA; probe.cuda_initialized() does not
count that, so a CPU-only case in such a module keeps its perf_counter timing.

The same loop runs again right before and right after each case (`around_case`): a
process's launch path can change while it runs (issue 13, H200: one worker's calibration
went from 7.2 ms at its start to 10.5 ms at its end), and the figure next to the case is
the one that explains its time (model/state.py: CALIBRATION_CASE).

Cost: about 3 x 5 ms per calibration on a CPU, 3 x (launch time) on a GPU, twice per
worker process and twice per case.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from commitbench.harness import placement, probe
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import ResultRecord
from commitbench.model.state import CALIBRATION_CASE

GPU_LAUNCHES = 1000
GPU_WARMUP = 100
CPU_LOOP = 50_000
REPEATS = 3

Clock = Callable[[], float]


def cpu_loop(steps: int = CPU_LOOP) -> int:
    """The fixed CPU work: integer arithmetic the interpreter cannot skip."""
    acc = 0
    for i in range(steps):
        acc = (acc + i * i) % 1_000_003
    return acc


def _median_ms(fn: Callable[[], object], clock: Clock, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1e3)
    return statistics.median(times)


def gpu_wanted(device: str, *, cuda_benches: bool = False) -> bool:
    """Whether this worker calibrates on the GPU: not held to the CPU, CUDA available,
    and torch imported by the bench module or a bench that requires CUDA (calibration
    imports torch for no other module: a CPU module pays nothing)."""
    if device == "cpu":
        return False
    torch = sys.modules.get("torch")
    if torch is None and (cuda_benches or device == "cuda"):
        try:
            import torch
        except ImportError:
            return False
    if torch is None:
        return False
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # a broken driver: no GPU calibration, the CPU one
        return False


def calibrate(
    device: str = "auto", *, cuda_benches: bool = False, clock: Clock = time.perf_counter
) -> tuple[float, str]:
    """The calibration's median time in milliseconds, and where it ran ("cuda", "cpu").
    `device` "cuda" or "cpu" holds it there (the end calibration runs where the start
    one did); `cuda_benches`: a planned bench requires CUDA."""
    if gpu_wanted(device, cuda_benches=cuda_benches):
        return _gpu(clock), "cuda"
    return _median_ms(cpu_loop, clock, REPEATS), "cpu"


def _launches(torch: Any, x: Any) -> None:
    for _ in range(GPU_LAUNCHES):
        x.add_(1)
    torch.cuda.synchronize()


def _gpu(clock: Clock) -> float:
    import torch

    fresh = not torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
    x = torch.zeros(1, device="cuda")
    for _ in range(GPU_WARMUP):
        x.add_(1)
    torch.cuda.synchronize()

    ms = _median_ms(functools.partial(_launches, torch, x), clock, REPEATS)
    del x  # freed: probe.cuda_initialized() counts only the bench's allocations
    if fresh:
        probe.mark_calibration_cuda()
    return ms


def around_case(
    result: ResultRecord, before: tuple[float, str], after: tuple[float, str]
) -> ResultRecord:
    """`result` with the calibration timed right before and right after its case
    (model/state.py: CALIBRATION_CASE, one sample: their mean), and where the worker ran
    (harness/placement.py: the CPU it ended the case on, the CPUs it was allowed)."""
    metric = MetricRecord.from_samples(
        CALIBRATION_CASE,
        [(before[0] + after[0]) / 2],
        unit="ms",
        direction="lower",
        properties={
            "before_ms": before[0],
            "after_ms": after[0],
            "device": before[1],
            **placement.where(),
        },
    )
    return dataclasses.replace(result, metrics=(*result.metrics, metric))
