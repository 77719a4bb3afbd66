"""The category of operator and kernel names, and the per-iteration table."""

from __future__ import annotations

import pytest

from commitbench.model.profile import CATEGORIES, OpTable, category, op_table

# Real names, as torch.profiler reports them (CPU operators) and as CUDA kernels appear in
# its traces and in nsys on H100/H200 (cuBLAS, CUTLASS, FlashAttention, PyTorch, NCCL).
NAMES = [
    ("aten::mm", "gemm"),
    ("aten::addmm", "gemm"),
    ("aten::bmm", "gemm"),
    ("aten::baddbmm", "gemm"),
    ("aten::matmul", "gemm"),
    ("aten::linear", "gemm"),
    ("aten::_softmax", "reduction_softmax"),
    ("aten::softmax", "reduction_softmax"),
    ("aten::_log_softmax_backward_data", "reduction_softmax"),
    ("aten::sum", "reduction_softmax"),
    ("aten::layer_norm", "normalisation"),
    ("aten::native_layer_norm", "normalisation"),
    ("aten::native_layer_norm_backward", "normalisation"),
    ("aten::add_", "elementwise"),
    ("aten::add", "elementwise"),
    ("aten::mul", "elementwise"),
    ("aten::gelu", "elementwise"),
    ("aten::_foreach_add_", "elementwise"),
    ("aten::copy_", "memcpy_memset"),
    ("aten::_to_copy", "memcpy_memset"),
    ("aten::fill_", "memcpy_memset"),
    ("aten::_scaled_dot_product_flash_attention", "attention"),
    ("aten::_scaled_dot_product_efficient_attention", "attention"),
    ("aten::_scaled_dot_product_flash_attention_for_cpu", "attention"),
    ("aten::scaled_dot_product_attention", "attention"),
    ("aten::view", "other"),
    ("aten::transpose", "other"),
    ("aten::empty_strided", "other"),
    ("c10d::allreduce_", "communication"),
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1", "gemm"),
    ("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NNT", "gemm"),
    ("ampere_sgemm_128x64_tn", "gemm"),
    (
        "void cutlass::Kernel2<cutlass_80_tensorop_s1688gemm_128x128_16x5_tn_align4>"
        "(cutlass_80_tensorop_s1688gemm_128x128_16x5_tn_align4::Params)",
        "gemm",
    ),
    (
        "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 128, 4, false, "
        "false, cutlass::bfloat16_t>, false, true, false, false, true, true, false, false>"
        "(pytorch_flash::Flash_fwd_params)",
        "attention",
    ),
    (
        "fmha_cutlassF_f32_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel)",
        "attention",
    ),
    (
        "void (anonymous namespace)::softmax_warp_forward<float, float, float, 8, false, false>"
        "(float*, float const*, int, int, int, bool const*, int, bool)",
        "reduction_softmax",
    ),
    (
        "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>"
        "(int, float, float const*, float const*, float const*, float*, float*, float*)",
        "normalisation",
    ),
    (
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, "
        "at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<float>, "
        "at::detail::Array<char*, 3>)",
        "elementwise",
    ),
    (
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, "
        "at::native::func_wrapper_t<float, at::native::sum_functor<float, float, float>"
        "::operator()(at::TensorIterator&)::{lambda(float, float)#1}>, unsigned int, float, 4> >"
        "(at::native::ReduceOp<float, at::native::func_wrapper_t<float, "
        "at::native::sum_functor<float, float, float>::operator()(at::TensorIterator&)"
        "::{lambda(float, float)#1}>, unsigned int, float, 4>)",
        "reduction_softmax",
    ),
    (
        "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, "
        "at::detail::Array<char*, 1> >(int, at::native::FillFunctor<float>, "
        "at::detail::Array<char*, 1>)",
        "memcpy_memset",
    ),
    ("triton_poi_fused_add_mul_0", "elementwise"),
    ("triton_red_fused__softmax_1", "reduction_softmax"),
    (
        "ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)",
        "communication",
    ),
    ("ncclDevKernel_AllGather_RING_LL(ncclDevComm*, unsigned long, ncclWork*)", "communication"),
    ("Memcpy HtoD (Pageable -> Device)", "memcpy_memset"),
    ("Memcpy DtoH (Device -> Pageable)", "memcpy_memset"),
    ("Memset (Device)", "memcpy_memset"),
    ("cudaLaunchKernel", "other"),
]


@pytest.mark.parametrize(("name", "expected"), NAMES)
def test_category_of_real_names(name: str, expected: str) -> None:
    assert category(name) == expected


def test_every_category_is_reached() -> None:
    assert {expected for _, expected in NAMES} == set(CATEGORIES)


def test_table_is_per_iteration_longest_first_and_sums_names() -> None:
    entries = [
        ("aten::mm", 1, 0.004),
        ("aten::add_", 1, 0.001),
        ("aten::mm", 1, 0.004),
        ("aten::add_", 1, 0.001),
        ("aten::view", 2, 0.0),
        ("aten::_softmax", 2, 0.002),
    ]
    table = op_table(entries, 2, "cpu")
    assert [(r.name, r.category, r.calls, r.time_s) for r in table.rows] == [
        ("aten::mm", "gemm", 1.0, 0.004),
        ("aten::_softmax", "reduction_softmax", 1.0, 0.001),  # ties in time: by name
        ("aten::add_", "elementwise", 1.0, 0.001),
        ("aten::view", "other", 1.0, 0.0),
    ]
    assert table.total_s == pytest.approx(0.006, rel=1e-12)
    assert [r.share for r in table.rows] == pytest.approx([4 / 6, 1 / 6, 1 / 6, 0.0], rel=1e-12)
    shares = table.shares()
    assert shares["gemm"] == pytest.approx(4 / 6, rel=1e-12)
    assert shares["attention"] == 0.0
    assert OpTable.from_json(table.to_json()) == table


def test_table_keeps_the_time_of_rows_it_cuts() -> None:
    entries = [(f"k{i}", 1, float(i)) for i in range(1, 6)]  # 15 s in all
    table = op_table(entries, 1, "cuda", limit=2)
    assert [r.name for r in table.rows] == ["k5", "k4"]
    assert (table.total_s, table.rest_s, table.rest_rows) == (15.0, 6.0, 3)
    assert table.shares()["other"] == 1.0  # k1..k5 are no known kind: all "other"


def test_table_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="iterations"):
        op_table([], 0, "cpu")
    with pytest.raises(ValueError, match="source"):
        op_table([], 1, "rocm")
