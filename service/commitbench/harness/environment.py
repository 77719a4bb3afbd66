"""The software and devices a bench runs with, as the bench process sees them.

Probed once per run by a worker (`python -m commitbench.worker --environment`), in the
interpreter that runs the benches (the worktree's, after any `--setup`), not in the
orchestrator: the two may differ, and only the worker's view explains a result. Recorded
in `runs.environment`: `python`, `implementation`, `executable`, `platform`, a version
(or null) per package of `PACKAGES`, and with torch: `torch_cuda`, `cudnn` and `gpus`
(name, SM count, capability, memory). It imports torch, so it runs in a worker only.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

PACKAGES = ("torch", "triton", "bitsandbytes", "transformers", "numpy", "commitbench")


def probe() -> dict[str, Any]:
    """Versions and devices, read from package metadata and torch."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "platform": platform.platform(),
    }
    for name in PACKAGES:
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name] = None
    try:
        import torch
    except ImportError:
        return env
    env["torch_cuda"] = torch.version.cuda
    cudnn: Any = torch.backends.cudnn  # untyped module
    env["cudnn"] = cudnn.version() if cudnn.is_available() else None
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(
                {
                    "name": p.name,
                    "sm_count": p.multi_processor_count,
                    "capability": f"{p.major}.{p.minor}",
                    "memory_mib": p.total_memory // 2**20,
                }
            )
    env["gpus"] = gpus
    return env
