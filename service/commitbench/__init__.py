"""commitbench: continuous benchmarking of PyTorch code, per commit.

The public API is what this module exports; everything else is internal.
"""

from __future__ import annotations

from commitbench.errors import CommitbenchError
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
from commitbench.stats import Stats

__all__ = [
    "CaseKey",
    "CommitInfo",
    "CommitbenchError",
    "DeviceSample",
    "MachineInfo",
    "MetricRecord",
    "MetricsRecorder",
    "ResultRecord",
    "RunEnd",
    "RunHeader",
    "RunInfo",
    "Stats",
]
