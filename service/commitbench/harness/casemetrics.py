"""What the worker measures around every case besides the bench's own metrics: the
process's peak RSS and peak CUDA memory, and the machine state over the case (wall over
CPU time of its host-timed batches, model/state.py).

Separate from the case's execution (runcase.py), which adds these to an ok result: each
reads the kernel, torch or the Context, and none runs bench code.
"""

from __future__ import annotations

import resource

from commitbench.harness.context import Context
from commitbench.harness.probe import cuda_initialized
from commitbench.model.metrics import MetricRecord
from commitbench.model.state import RUN_WAIT, WALL_PER_CPU


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def peak_rss_mib(since_reset: bool) -> tuple[float, str]:
    """Peak RSS in MiB and where it came from."""
    if since_reset:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024, "VmHWM since case start"
    # ru_maxrss is KiB on Linux and the whole process's lifetime peak.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ru_maxrss (process)"


def memory_metrics(ctx: Context, rss_reset: bool) -> list[MetricRecord]:
    taken = {m.name for m in ctx.metrics}
    out = []
    if "peak_rss" not in taken:
        value, source = peak_rss_mib(rss_reset)
        out.append(
            MetricRecord.from_samples(
                "peak_rss", [value], unit="MiB", direction="lower", properties={"source": source}
            )
        )
    if "peak_cuda_mem" not in taken and cuda_initialized():
        import torch

        peak = torch.cuda.max_memory_allocated() / 2**20
        out.append(
            MetricRecord.from_samples(
                "peak_cuda_mem",
                [peak],
                unit="MiB",
                direction="lower",
                properties={"source": "torch.cuda.max_memory_allocated"},
            )
        )
    return out


def state_metrics(ctx: Context) -> list[MetricRecord]:
    """The machine state this process measured over the case (model/state.py): wall
    over CPU time of the host-timed calls, and how much waiting for a CPU stretched
    them; one sample each, this process's."""
    ratio = ctx.wall_per_cpu
    if ratio is None or WALL_PER_CPU in {m.name for m in ctx.metrics}:
        return []
    out = [
        MetricRecord.from_samples(
            WALL_PER_CPU,
            [ratio],
            unit="ratio",
            direction="lower",
            properties={"source": "perf_counter / process_time over the timed batches"},
        )
    ]
    share = ctx.run_wait_share
    if share is not None:
        out.append(
            MetricRecord.from_samples(
                RUN_WAIT,
                [share],
                unit="fraction",
                direction="lower",
                properties={
                    "source": "schedstat of every thread over the timed batches: "
                    "min(waited / max(wall, ran + waited), 1 - CPU / (wall x CPUs allowed))"
                },
            )
        )
    return out
