"""commitbench: continuous benchmarking of PyTorch code, per commit.

The public API is what this module exports; everything else is internal.

A bench module does `import commitbench as cb` inside the bench process, so this module
loads only the authoring API (harness/) and the plain values (model/). The orchestrator's
pieces (`MetricsRecorder`, `DeviceSampler`, `run_module`, ...) load on first use
(PEP 562): a worker never imports the launcher, the sampler, psutil or the stores.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from commitbench.errors import CommitbenchError
from commitbench.harness.bench import Bench, Skipped, bench
from commitbench.harness.context import Context
from commitbench.harness.timing import TimingPolicy
from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import (
    CommitInfo,
    DeviceSample,
    MachineInfo,
    ResultRecord,
    RunEnd,
    RunHeader,
    RunInfo,
)
from commitbench.model.stats import Stats

if TYPE_CHECKING:
    from commitbench.runner.launcher import CaseRun, WorkerOptions, run_module
    from commitbench.runner.recorder import MetricsRecorder
    from commitbench.runner.sampling.sampler import DeviceSampler

# The orchestrator's side, loaded on first use (see the module docstring).
_LAZY = {
    "CaseRun": "commitbench.runner.launcher",
    "DeviceSampler": "commitbench.runner.sampling.sampler",
    "MetricsRecorder": "commitbench.runner.recorder",
    "WorkerOptions": "commitbench.runner.launcher",
    "run_module": "commitbench.runner.launcher",
}

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


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'commitbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
