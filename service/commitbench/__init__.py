"""commitbench: continuous benchmarking of PyTorch code, per commit.

The public API is what this module exports; everything else is internal.
"""

from __future__ import annotations

from commitbench.bench import Bench, Context, Skipped, bench
from commitbench.errors import CommitbenchError
from commitbench.launcher import CaseRun, WorkerOptions, run_module
from commitbench.recorder import MetricsRecorder
from commitbench.records import (
    CaseKey,
    CommitInfo,
    DeviceSample,
    MachineInfo,
    MetricRecord,
    ResultRecord,
    RunEnd,
    RunHeader,
    RunInfo,
)
from commitbench.sampler import DeviceSampler
from commitbench.stats import Stats
from commitbench.timing import TimingPolicy

__all__ = [
    "Bench",
    "CaseKey",
    "CaseRun",
    "CommitInfo",
    "CommitbenchError",
    "Context",
    "DeviceSample",
    "DeviceSampler",
    "MachineInfo",
    "MetricRecord",
    "MetricsRecorder",
    "ResultRecord",
    "RunEnd",
    "RunHeader",
    "RunInfo",
    "Skipped",
    "Stats",
    "TimingPolicy",
    "WorkerOptions",
    "bench",
    "run_module",
]
