"""The loops `commitbench doctor` times, one worker process at a time (runner/doctor.py).

A bench module like any other, run by the same workers, timer and calibration as a
commit's benches, so the noise it reports is the noise those see:

- `doctor.cpu`: a fixed integer loop in the interpreter (calibration.cpu_loop, 5,000
  steps, about half a millisecond): host jitter, the core's clock, what else runs;
- `doctor.gpu_launch` (CUDA): 100 tiny `add_` launches per call, device time between
  CUDA events, so the launch path sets it (the kind of case issue 13 saw vary 11%
  between processes);
- `doctor.gpu_matmul` (CUDA): one 4096x4096 bf16 matmul per call: clocks, power and
  thermal state.

Each times for `COMMITBENCH_DOCTOR_BUDGET_S` seconds (set by the runner; 1 by default),
without stopping early at a narrow interval: the budget is the measurement.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from commitbench.harness.bench import bench
from commitbench.harness.calibration import cpu_loop
from commitbench.harness.context import Context

BUDGET_ENV = "COMMITBENCH_DOCTOR_BUDGET_S"
CPU_STEPS = 5_000
LAUNCHES = 100
MATMUL_N = 4096


def _budget() -> float:
    try:
        return max(0.05, float(os.environ.get(BUDGET_ENV, "1")))
    except ValueError:
        return 1.0


@bench(name="doctor.cpu")
def cpu(ctx: Context) -> None:
    loop = functools.partial(cpu_loop, CPU_STEPS)
    ctx.time("cpu_loop", loop, warmup=20, budget_s=_budget(), target_rel_ci=0.0, timer="cpu")


def _launches(x: Any) -> None:
    for _ in range(LAUNCHES):
        x.add_(1)


@bench(name="doctor.gpu_launch", requires=("cuda",))
def gpu_launch(ctx: Context) -> None:
    import torch

    x = torch.zeros(1, device="cuda")
    launch = functools.partial(_launches, x)
    ctx.time("launch", launch, warmup=20, budget_s=_budget(), target_rel_ci=0.0, timer="cuda")


@bench(name="doctor.gpu_matmul", requires=("cuda",))
def gpu_matmul(ctx: Context) -> None:
    import torch

    a = torch.randn(MATMUL_N, MATMUL_N, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(MATMUL_N, MATMUL_N, device="cuda", dtype=torch.bfloat16)
    ctx.time(
        "matmul",
        lambda: a @ b,
        flops=2 * MATMUL_N**3,
        dtype="bf16",
        warmup=10,
        budget_s=_budget(),
        target_rel_ci=0.0,
        timer="cuda",
    )
