from __future__ import annotations

from commitbench.harness.peaks import dense_peak_tflops, normalize_dtype


def test_known_devices_give_the_datasheet_dense_figure() -> None:
    assert dense_peak_tflops("NVIDIA H100 80GB HBM3", 132, "bf16") == 989.5
    assert dense_peak_tflops("NVIDIA H100 PCIe", 114, "torch.float16") == 756.5
    assert dense_peak_tflops("NVIDIA H200", 132, "bfloat16") == 989.5
    assert dense_peak_tflops("NVIDIA A100-SXM4-80GB", 108, "tf32") == 156.0
    assert dense_peak_tflops("NVIDIA L4", 58, "fp8") == 242.5
    assert dense_peak_tflops("NVIDIA GeForce RTX 4090", 128, "bf16") == 165.2


def test_unknown_devices_sm_counts_and_dtypes_get_none() -> None:
    assert dense_peak_tflops("NVIDIA H100 NVL", 132, "bf16") is None
    assert dense_peak_tflops("NVIDIA H100 80GB HBM3", 114, "bf16") is None
    assert dense_peak_tflops("NVIDIA GeForce RTX 4090", 128, "fp8") is None
    assert dense_peak_tflops("NVIDIA H200", 132, "complex64") is None
    assert dense_peak_tflops("NVIDIA H200", 132, None) is None


def test_dtype_spellings() -> None:
    assert normalize_dtype("torch.bfloat16") == "bf16"
    assert normalize_dtype("half") == "fp16"
    assert normalize_dtype("float8_e4m3fn") == "fp8"
    assert normalize_dtype("fp32") == "fp32"
    assert normalize_dtype("uint4") is None
