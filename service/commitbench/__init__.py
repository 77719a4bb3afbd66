"""commitbench: continuous benchmarking of PyTorch code, per commit.

The public API is what this module exports; everything else is internal.

`MetricsRecorder` loads on first use (PEP 562), so `import commitbench as cb` in a bench
module, run by a worker, does not import the stores (SQLAlchemy, psycopg) that only the
runner needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from commitbench.bench import Bench, Context, Skipped, bench
from commitbench.errors import CommitbenchError
from commitbench.launcher import CaseRun, WorkerOptions, run_module
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

if TYPE_CHECKING:
    from commitbench.recorder import MetricsRecorder

# Loaded on first use: the stores need SQLAlchemy and psycopg, which workers never do.
_LAZY = {"MetricsRecorder": "commitbench.recorder"}

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
