"""What the machine offers a bench, and whether bench code has used CUDA.

`Probe` answers a bench's requirements (`requires=`, harness/bench.py) lazily: torch is
imported only for GPU questions. `cuda_initialized` tells the worker and the Context
whether this process's bench code used CUDA, discounting the calibration loop
(harness/calibration.py), which may initialise CUDA before any case runs.

Separate from the authoring API (bench.py) and the Context (context.py): both, the
worker's case runner (runcase.py) and the calibration ask these, and the flag the
calibration sets is held here once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from commitbench.harness.bench import parse_requirement


class Probe:
    """What the machine offers, asked lazily (torch is imported only for GPU questions)."""

    def __init__(self, device: str = "auto") -> None:
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device {device!r} is not auto, cpu or cuda")
        self._device = device
        self._cuda: bool | None = None

    def cuda(self) -> bool:
        if self._cuda is None:
            if self._device == "cpu":
                self._cuda = False
            else:
                try:
                    import torch
                except ImportError:
                    self._cuda = False
                else:
                    self._cuda = bool(torch.cuda.is_available())
        return self._cuda

    def gpu_count(self) -> int:
        if not self.cuda():
            return 0
        import torch

        return int(torch.cuda.device_count())

    def gpu_mem_gib(self) -> float:
        if not self.cuda():
            return 0.0
        import torch

        return float(torch.cuda.get_device_properties(0).total_memory) / 2**30

    def has_module(self, name: str) -> bool:
        import importlib.util

        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    def missing(self, requires: Sequence[str]) -> str | None:
        """The first unmet requirement as a sentence, or None when all are met."""
        for text in requires:
            what, minimum = parse_requirement(text)
            if what == "cuda" and not self.cuda():
                return "requires CUDA, which is not available"
            if what == "gpus" and minimum is not None and self.gpu_count() < minimum:
                return f"requires {minimum:g} GPUs, found {self.gpu_count()}"
            if what == "gpu_mem_gib" and minimum is not None and self.gpu_mem_gib() < minimum:
                return f"requires {minimum:g} GiB of GPU memory, found {self.gpu_mem_gib():.1f}"
            if what not in ("cuda", "gpus", "gpu_mem_gib") and not self.has_module(what):
                return f"requires {what}, which is not installed"
        return None


# Set when the worker's calibration (harness/calibration.py), not bench code, initialised
# CUDA in this process.
_calibration_cuda = False


def mark_calibration_cuda() -> None:
    """The calibration initialised CUDA: cuda_initialized() counts it only once bench
    code has allocated GPU memory."""
    global _calibration_cuda
    _calibration_cuda = True


def cuda_initialized() -> bool:
    """True when this process's bench code has used CUDA (without importing torch
    otherwise). Where only the calibration initialised CUDA, the bench has used it once
    it allocated GPU memory (the peak since the case began; the calibration's tensor is
    freed), so a CPU-only case keeps its perf_counter timer and no peak_cuda_mem."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return False
    if not _calibration_cuda:
        return True
    return bool(torch.cuda.memory_allocated() > 0 or torch.cuda.max_memory_allocated() > 0)
