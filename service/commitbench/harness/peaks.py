"""Dense peak throughput of known GPUs, from the vendors' datasheets.

Figures are TFLOP/s (TOP/s for int8) without structured sparsity: the datasheets print
the sparse figure with an asterisk, and the dense one is half of it. Tensor-core figures
assume FP32 accumulation, which is what PyTorch uses for bf16/fp16 matmuls. A table row
is keyed by the exact NVML/CUDA device name and the SM count, because one name can cover
boards with different clocks and SM counts; a device not in the table gets no percentage
at all, never a guess from a neighbour.

Sources: NVIDIA H100 Tensor Core GPU datasheet (SXM5 and PCIe columns), NVIDIA H200
datasheet (SXM column), NVIDIA A100 datasheet (SXM4 and PCIe, same peaks), NVIDIA L4
datasheet, NVIDIA Ada Lovelace architecture whitepaper appendix (GeForce RTX 4090; its
FP8 figure with FP32 accumulation is reported inconsistently, so it is left out).
"""

from __future__ import annotations

from collections.abc import Mapping

# dtype names accepted by `dense_peak_tflops`, with the spellings torch uses.
_DTYPE_ALIASES = {
    "float64": "fp64",
    "double": "fp64",
    "float32": "fp32",
    "float": "fp32",
    "tf32": "tf32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float8_e4m3fn": "fp8",
    "float8_e5m2": "fp8",
    "int8": "int8",
}

_H100_SXM = {
    "fp64": 67.0,  # FP64 tensor core; 34 without
    "fp32": 67.0,
    "tf32": 494.5,
    "bf16": 989.5,
    "fp16": 989.5,
    "fp8": 1979.0,
    "int8": 1979.0,
}
_H100_PCIE = {
    "fp64": 51.0,
    "fp32": 51.0,
    "tf32": 378.0,
    "bf16": 756.5,
    "fp16": 756.5,
    "fp8": 1513.0,
    "int8": 1513.0,
}
_A100 = {
    "fp64": 19.5,
    "fp32": 19.5,
    "tf32": 156.0,
    "bf16": 312.0,
    "fp16": 312.0,
    "int8": 624.0,
}
_L4 = {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0, "fp8": 242.5, "int8": 242.5}
_RTX_4090 = {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2, "int8": 660.6}

# (device name as CUDA/NVML report it, SM count) -> dtype -> dense TFLOP/s
PEAKS: Mapping[tuple[str, int], Mapping[str, float]] = {
    ("NVIDIA H100 80GB HBM3", 132): _H100_SXM,
    ("NVIDIA H100 PCIe", 114): _H100_PCIE,
    ("NVIDIA H200", 132): _H100_SXM,  # same GH100 compute as the H100 SXM, more memory
    ("NVIDIA A100-SXM4-80GB", 108): _A100,
    ("NVIDIA A100-SXM4-40GB", 108): _A100,
    ("NVIDIA A100 80GB PCIe", 108): _A100,
    ("NVIDIA A100-PCIE-40GB", 108): _A100,
    ("NVIDIA L4", 58): _L4,
    ("NVIDIA GeForce RTX 4090", 128): _RTX_4090,
}


def normalize_dtype(dtype: object) -> str | None:
    """'bf16', 'bfloat16' or torch.bfloat16 -> 'bf16'; None for anything unknown."""
    if dtype is None:
        return None
    text = str(dtype).removeprefix("torch.").lower()
    if text in _DTYPE_ALIASES.values():
        return text
    return _DTYPE_ALIASES.get(text)


def dense_peak_tflops(device_name: str, sm_count: int, dtype: object) -> float | None:
    """Datasheet dense peak for this device and dtype, or None when not known."""
    key = normalize_dtype(dtype)
    row = PEAKS.get((device_name, sm_count))
    if row is None or key is None:
        return None
    return row.get(key)
