"""Machine fingerprint of the orchestrating host (the software a bench runs with is
probed by a worker: harness/environment.py).

The fingerprint covers what changes a measurement (GPU model, count, memory, driver,
CUDA; CPU model and count; RAM) and never the host name, so identical boxes of a fleet
share one series.
"""

from __future__ import annotations

import importlib
import platform
from typing import Any

import psutil

from commitbench.model.records import MachineInfo


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_facts(nvml: Any = None) -> dict[str, Any]:
    """GPU facts from NVML (`nvml` defaults to pynvml); an empty dict without a driver."""
    try:
        nvml = nvml if nvml is not None else importlib.import_module("pynvml")
        nvml.nvmlInit()
    except Exception:
        return {}
    try:
        count = nvml.nvmlDeviceGetCount()
        if count == 0:
            return {}
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        names = [_text(nvml.nvmlDeviceGetName(h)) for h in handles]
        memory = [nvml.nvmlDeviceGetMemoryInfo(h).total // 2**20 for h in handles]
        cuda = nvml.nvmlSystemGetCudaDriverVersion_v2()
        return {
            "gpu_name": names[0],
            "gpu_names": names,
            "gpu_count": count,
            "gpu_memory_mib": memory[0],
            "gpu_memory_mib_each": memory,
            "driver_version": _text(nvml.nvmlSystemGetDriverVersion()),
            "cuda_version": f"{cuda // 1000}.{cuda % 1000 // 10}",
        }
    finally:
        nvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def host_facts() -> dict[str, Any]:
    """CPU model, logical and physical cores, RAM and architecture of this host."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": psutil.cpu_count(logical=True),
        "cpu_cores": psutil.cpu_count(logical=False),
        "ram_mib": psutil.virtual_memory().total // 2**20,
        "arch": platform.machine(),
    }


def fingerprint(nvml: Any = None) -> MachineInfo:
    """The machine as the recorder keys it: host facts plus every GPU's (no host name)."""
    facts: dict[str, Any] = {**host_facts(), "gpu_count": 0}
    facts.update(gpu_facts(nvml))
    return MachineInfo.from_facts(**facts)
