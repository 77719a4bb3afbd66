"""Machine fingerprint and environment of the orchestrating host.

The fingerprint covers what changes a measurement (GPU model, count, memory, driver,
CUDA; CPU model and count; RAM) and never the host name, so identical boxes of a fleet
share one series.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

import psutil

from commitbench.records import MachineInfo

_PACKAGES = ("torch", "bitsandbytes", "triton", "transformers", "numpy", "commitbench")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_facts() -> dict[str, Any]:
    """GPU facts from NVML; an empty dict when there is no NVIDIA driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return {}
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return {}
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        return {
            "gpu_name": name.decode() if isinstance(name, bytes) else name,
            "gpu_count": count,
            "gpu_memory_mib": pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20,
            "driver_version": str(pynvml.nvmlSystemGetDriverVersion()),
            "cuda_version": f"{cuda // 1000}.{cuda % 1000 // 10}",
        }
    finally:
        pynvml.nvmlShutdown()


def fingerprint() -> MachineInfo:
    facts: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_count": psutil.cpu_count(logical=True),
        "ram_mib": psutil.virtual_memory().total // 2**20,
        "arch": platform.machine(),
        "gpu_count": 0,
    }
    facts.update(gpu_facts())
    return MachineInfo.from_facts(**facts)


def environment() -> dict[str, Any]:
    """Software versions that change results; read from metadata, nothing is imported."""
    versions: dict[str, Any] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "packages": versions,
    }
