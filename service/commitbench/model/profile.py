"""What a case's profile becomes: an operator/kernel table per iteration, its categories,
and the names of the metrics it is recorded as.

`commitbench run --trace` runs each case a few extra iterations under torch.profiler
after its timed loop (harness/profiling.py). The worker reduces what the profiler saw to
an `OpTable`: one row per operator (CPU) or kernel (CUDA), with its calls and time per
iteration and its share of the table's time. The table rides in the properties of the
`profile.time_per_iter` metric, so it travels through every store, export and import
unchanged; `commitbench explain` (analysis/explain.py) diffs two of them.

The tracked numbers are ordinary metrics named `profile.*` (PREFIX). Like `state.*` they
describe where the time went, not how fast the code is: a share that moves is a clue,
not a verdict (`is_profile`).

Categories are decided from the name alone (`category`): aten operator names by their
base name, kernel names by the substrings that cuBLAS/CUTLASS, FlashAttention, PyTorch's
own kernels, Triton and NCCL put in them. The order of the rules matters (a CUTLASS
attention kernel is attention, not a GEMM); the tests in tests/model/test_profile.py
pin real names to their category.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "profile."
TRACE_ITERATIONS = 5  # profiled iterations per case with --trace
TIME_PER_ITER = "profile.time_per_iter"  # s: the table's total (its properties hold it)
HOST_PER_ITER = "profile.host_per_iter"  # s: wall time to issue one iteration's work
DEVICE_PER_ITER = "profile.device_per_iter"  # s: GPU busy (union of kernel intervals)
HOST_OVER_DEVICE = "profile.host_over_device"  # ratio: above 1, launch-bound
LAUNCHES_PER_ITER = "profile.launches_per_iter"  # kernels, memcpys and memsets (CUDA)
OPS_PER_ITER = "profile.ops_per_iter"  # operator calls at every nesting level
PEAK_ALLOCATED = "profile.peak_allocated"  # MiB: torch.cuda.max_memory_allocated
PEAK_RESERVED = "profile.peak_reserved"  # MiB: torch.cuda.max_memory_reserved
SHARE_PREFIX = "profile.share."  # %: a category's share of the table's time
# The files of a profile, by kind, named by sha256 in TIME_PER_ITER's properties under
# ARTIFACTS ({kind: sha256}); kept by store/artifacts.py.
ARTIFACTS = "artifacts"
CHROME_TRACE = "chrome_trace"
MEMORY_SNAPSHOT = "memory_snapshot"

CATEGORIES = (
    "gemm",
    "attention",
    "elementwise",
    "reduction_softmax",
    "normalisation",
    "memcpy_memset",
    "communication",
    "other",
)

_PER_PART = (
    TIME_PER_ITER,
    HOST_PER_ITER,
    DEVICE_PER_ITER,
    HOST_OVER_DEVICE,
    LAUNCHES_PER_ITER,
    OPS_PER_ITER,
)

SOURCES = ("cpu", "cuda")  # cpu: operators' self CPU time; cuda: kernels' device time


def artifact_stem(case_label: str) -> str:
    """The name a worker gives a case's trace files in --trace-dir (no path characters)."""
    return hashlib.sha256(case_label.encode()).hexdigest()[:32]


def is_profile(metric: str) -> bool:
    """Whether `metric` describes where the time went rather than how long it took."""
    return metric.startswith(PREFIX)


def share_metric(cat: str) -> str:
    return SHARE_PREFIX + cat


def part_prefix(part: str) -> str:
    """The prefix of the metrics of one timed function of a case that times several
    (`profile.forward.share.gemm`); the case's own are one iteration of all of them."""
    return f"{PREFIX}{part}."


def in_part(metric: str, part: str | None) -> str:
    """`metric` (a `profile.*` name) for the timed function `part`, or as is for None."""
    return metric if part is None else part_prefix(part) + metric.removeprefix(PREFIX)


# -- the category of a name ---------------------------------------------------------------

# aten operators by base name (namespace, leading underscores and the in-place `_` gone).
_ATEN: dict[str, str] = {}
for _cat, _names in {
    "gemm": "mm addmm bmm baddbmm addbmm matmul linear einsum mv addmv dot vdot scaled_mm "
    "int_mm conv1d conv2d conv3d convolution cudnn_convolution mkldnn_convolution "
    "convolution_backward mm_backward linear_backward bilinear",
    "attention": "scaled_dot_product_attention scaled_dot_product_flash_attention "
    "scaled_dot_product_efficient_attention scaled_dot_product_cudnn_attention "
    "flash_attention_forward flash_attention_backward efficient_attention_forward "
    "efficient_attention_backward scaled_dot_product_flash_attention_backward "
    "scaled_dot_product_efficient_attention_backward scaled_dot_product_attention_math "
    "multi_head_attention_forward native_multi_head_attention",
    "reduction_softmax": "softmax log_softmax softmax_backward_data log_softmax_backward_data "
    "sum mean max min amax amin argmax argmin prod norm linalg_vector_norm logsumexp var std "
    "var_mean std_mean cumsum cumprod all any topk sort",
    "normalisation": "layer_norm native_layer_norm native_layer_norm_backward batch_norm "
    "native_batch_norm native_batch_norm_backward cudnn_batch_norm group_norm "
    "native_group_norm instance_norm rms_norm fused_rms_norm local_response_norm",
    "memcpy_memset": "copy to to_copy clone contiguous fill zero zeros zeros_like ones "
    "ones_like full full_like empty_like new_zeros new_full cat stack index_select gather "
    "scatter",
    "communication": "all_reduce allreduce all_gather allgather all_gather_into_tensor "
    "reduce_scatter reduce_scatter_tensor broadcast all_to_all alltoall alltoall_base send "
    "recv barrier",
    "elementwise": "add sub rsub mul div true_divide neg abs exp exp2 expm1 log log2 log1p pow "
    "sqrt rsqrt reciprocal relu relu6 gelu silu mish sigmoid tanh softplus hardswish "
    "leaky_relu elu erf erfc sin cos where clamp clamp_min clamp_max masked_fill dropout "
    "native_dropout threshold threshold_backward gelu_backward silu_backward "
    "sigmoid_backward tanh_backward maximum minimum eq ne lt le gt ge logical_not "
    "logical_and logical_or bitwise_and addcmul addcdiv lerp sign floor ceil round trunc "
    "fmod remainder square polar",
}.items():
    for _name in _names.split():
        _ATEN[_name] = _cat

# Kernel (and other non-aten) names: the first rule that matches decides.
_KERNEL_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (cat, re.compile(pattern, re.IGNORECASE))
    for cat, pattern in (
        ("communication", r"nccl|c10d::|allreduce|all_reduce|allgather|all_gather|reduce_?scatter"),
        ("memcpy_memset", r"memcpy|memset|copy_kernel|fillfunctor|direct_copy"),
        ("attention", r"flash|fmha|attention|sdpa|attn"),
        (
            "gemm",
            r"gemm|gemv|cutlass|xmma|nvjet|cublas|sgemm|hgemm|wgmma|triton_tem|"
            r"splitk|conv2d|implicit_convolve|convolve_|dot_kernel",
        ),
        ("normalisation", r"layer_?norm|batch_?norm|group_?norm|rms_?norm|welford|moments"),
        (
            "reduction_softmax",
            r"softmax|reduce_kernel|reduction|triton_red|triton_per|cub::|argmax|topk|"
            r"sort|scan",
        ),
        (
            "elementwise",
            r"elementwise|triton_poi|functor|foreach|multi_tensor_apply|"
            r"activation|gelu|silu|relu|dropout|adam|sgd",
        ),
    )
)
_ATEN_NAMESPACE = re.compile(r"^(aten|c10d|prim|prims|_c10d_functional|c10d_functional)::")


def category(name: str) -> str:
    """The category of an operator or kernel name (one of CATEGORIES)."""
    namespace = _ATEN_NAMESPACE.match(name)
    if namespace is not None:
        if namespace.group(1) != "aten" and namespace.group(1) != "prim":
            return "communication" if "c10d" in namespace.group(1) else "other"
        base = name[namespace.end() :].split(".", 1)[0].strip("_")
        if base in _ATEN:
            return _ATEN[base]
        name = base  # an operator the list does not name: by the kernel rules
    for cat, pattern in _KERNEL_RULES:
        if pattern.search(name):
            return cat
    return "other"


# -- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpRow:
    """One operator or kernel, per profiled iteration."""

    name: str
    category: str
    calls: float  # calls per iteration
    time_s: float  # seconds per iteration (self CPU time, or device time)
    share: float  # of the table's total time, 0..1

    def to_json(self) -> list[Any]:
        return [self.name, self.category, self.calls, self.time_s, self.share]

    @classmethod
    def from_json(cls, row: list[Any]) -> OpRow:
        name, cat, calls, time_s, share = row
        return cls(str(name), str(cat), float(calls), float(time_s), float(share))


@dataclass(frozen=True)
class OpTable:
    """The operators (source "cpu") or kernels (source "cuda") of `iterations` profiled
    iterations, normalised per iteration, longest first. `total_s` counts every row, also
    those cut off by `limit` when the table was made (whose time is in `rest_s`)."""

    source: str
    iterations: int
    rows: tuple[OpRow, ...]
    total_s: float
    rest_s: float = 0.0  # time per iteration of the rows not kept
    rest_rows: int = 0

    def shares(self) -> dict[str, float]:
        """Each category's share of the total, 0..1, for every category (0 if absent)."""
        out = dict.fromkeys(CATEGORIES, 0.0)
        for row in self.rows:
            out[row.category] += row.share
        if self.rest_s and self.total_s:
            out["other"] += self.rest_s / self.total_s
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "iterations": self.iterations,
            "total_s": self.total_s,
            "rest_s": self.rest_s,
            "rest_rows": self.rest_rows,
            "columns": ["name", "category", "calls", "time_s", "share"],
            "rows": [r.to_json() for r in self.rows],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OpTable:
        return cls(
            source=str(data["source"]),
            iterations=int(data["iterations"]),
            rows=tuple(OpRow.from_json(r) for r in data["rows"]),
            total_s=float(data["total_s"]),
            rest_s=float(data.get("rest_s", 0.0)),
            rest_rows=int(data.get("rest_rows", 0)),
        )


MAX_ROWS = 200  # rows kept per table: enough for a transformer step, a few KB of JSON


def op_table(
    entries: Iterable[tuple[str, int, float]],
    iterations: int,
    source: str,
    *,
    limit: int = MAX_ROWS,
) -> OpTable:
    """The table of `entries` (name, calls, seconds over all iterations), the same name
    summed, divided by `iterations`. Rows with no time and no calls are dropped; ties in
    time are ordered by name so the table is the same for the same profile."""
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    if source not in SOURCES:
        raise ValueError(f"source {source!r} is not one of {SOURCES}")
    calls: dict[str, int] = {}
    times: dict[str, float] = {}
    for name, n, seconds in entries:
        calls[name] = calls.get(name, 0) + n
        times[name] = times.get(name, 0.0) + seconds
    total = sum(times.values()) / iterations
    ordered = sorted(times, key=lambda k: (-times[k], k))
    ordered = [k for k in ordered if times[k] > 0 or calls[k] > 0]
    kept, cut = ordered[:limit], ordered[limit:]
    rows = tuple(
        OpRow(
            name=k,
            category=category(k),
            calls=calls[k] / iterations,
            time_s=times[k] / iterations,
            share=(times[k] / iterations / total) if total > 0 else 0.0,
        )
        for k in kept
    )
    rest = sum(times[k] for k in cut) / iterations
    return OpTable(source, iterations, rows, total, rest, len(cut))


@dataclass(frozen=True)
class Profile:
    """One result's profile as read back: its table, its `profile.*` values (medians) and
    the allocation sites at its memory peak (CUDA; site -> MiB)."""

    table: OpTable
    values: Mapping[str, float]
    sites: Mapping[str, float]

    @classmethod
    def of(cls, metrics: Iterable[Any], part: str | None = None) -> Profile | None:
        """From a result's metrics (model.metrics.MetricRecord): the whole case's, or with
        `part` one timed function's (`values` then named as the case's are); None
        without a table."""
        table: OpTable | None = None
        values: dict[str, float] = {}
        sites: dict[str, float] = {}
        wanted = {in_part(name, part): name for name in _PER_PART}
        for m in metrics:
            name = wanted.get(m.name)
            if name is None and m.name in (PEAK_ALLOCATED, PEAK_RESERVED):
                name = m.name  # memory is the case's alone (one extra iteration)
            if name is None:
                continue
            if m.median is not None:
                values[name] = float(m.median)
            if name == TIME_PER_ITER and "table" in m.properties:
                table = OpTable.from_json(m.properties["table"])
            if name == PEAK_ALLOCATED:
                for entry in m.properties.get("sites", ()):
                    sites[str(entry["site"])] = float(entry["mib"])
        return None if table is None else cls(table, values, sites)
