"""Matrix products of a transformer's feed-forward shape: fp16/bf16, int8 and NF4.

The seed workload is bitsandbytes' matmul benchmark: activations of batch 2 x sequence
512 x model width against a (hidden x model) weight, `out = x @ W.t()`, for
model/hidden 4096/12288, 5120/15360 and 12288/49152. FLOPs = 2 * 2 * 512 * model * hidden
(a multiply-add is 2). It timed without synchronising and called bitsandbytes APIs that
have since been removed; here int8 goes through the current API
(`int8_vectorwise_quant` -> `int8_linear_matmul` -> `int8_mm_dequant`, bitsandbytes >=
0.45), and every time is device time (the harness's CUDA events).

Each quantized case also records `rel_err`, ||y - y_fp16||_F / ||y_fp16||_F against the
fp16 product of the same inputs, so a kernel that got fast by getting wrong shows up.
Inputs are standard normal (as in the seed), so the 6.0 outlier threshold of
`Linear8bitLt` finds no outliers: the threshold=6.0 case measures the cost of looking.

The smoke profile shrinks the widths to 64-768 and the sequence to 8; bitsandbytes
>= 0.49 runs int8 and NF4 on a CPU, so those cases run in CI too.
"""

from __future__ import annotations

from typing import Any

import _suite

import commitbench as cb

SHAPES = ["4096x12288", "5120x15360", "12288x49152"]
BATCH, SEQ = 2, 512


def _dims(ctx: cb.Context, shape: str) -> tuple[int, int, int]:
    """(rows of x, model, hidden) for the profile."""
    model, hidden = (int(v) for v in shape.split("x"))
    # Smoke widths stay multiples of 64, NF4's block size: bitsandbytes 0.50.2 on a CPU
    # quantizes rows of another length with a relative error of 0.25 instead of 0.09.
    dims = (
        BATCH * ctx.pick(smoke=8, full=SEQ),
        ctx.pick(smoke=-(-model // 4096) * 64, full=model),
        ctx.pick(smoke=-(-hidden // 4096) * 64, full=hidden),
    )
    ctx.note(shape=f"{dims[1]}x{dims[2]}", tokens=dims[0])
    return dims


def _inputs(ctx: cb.Context, shape: str, dtype: Any) -> tuple[Any, Any, int]:
    import torch

    _suite.seed(ctx)
    m, k, n = _dims(ctx, shape)
    x = torch.randn(m, k, dtype=dtype, device=ctx.device)
    w = torch.randn(n, k, dtype=dtype, device=ctx.device)
    return x, w, 2 * m * k * n


def _rel_err(ctx: cb.Context, y: Any, x: Any, w: Any) -> None:
    import torch

    ref = (x.half() @ w.half().t()).float()
    err = torch.linalg.vector_norm(y.float() - ref) / torch.linalg.vector_norm(ref)
    ctx.record("rel_err", float(err), "1", reference="fp16 torch.matmul")


@cb.bench(params={"dtype": ["fp16", "bf16"], "shape": SHAPES})
def dense(ctx: cb.Context, dtype: str, shape: str) -> None:
    """`torch.matmul` in fp16 or bf16 (fp32 accumulation)."""
    import torch

    torch_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    x, w, flops = _inputs(ctx, shape, torch_dtype)
    wt = w.t()
    ctx.time("time", lambda: torch.matmul(x, wt), flops=flops, dtype=dtype, **_suite.quick(ctx))
    ctx.record("weight_mem", w.numel() * w.element_size() / _suite.MIB, "MiB")


@cb.bench(params={"shape": SHAPES}, requires=("bitsandbytes",))
def int8(ctx: cb.Context, shape: str) -> None:
    """LLM.int8 building blocks without outliers: row-wise quantize the activations,
    int8 x int8 -> int32 product, dequantize with both scale vectors. `time` is the
    whole pipeline (the weight is quantized once, in setup); `matmul` is the int8
    product alone. Throughput of both is counted in int8 ops (TOPS) against the int8
    dense peak."""
    import bitsandbytes.functional as bf
    import torch

    x, w, flops = _inputs(ctx, shape, torch.float16)
    wq, w_scale, _ = bf.int8_vectorwise_quant(w)
    xq, _, _ = bf.int8_vectorwise_quant(x)

    def pipeline() -> Any:
        aq, a_scale, _ = bf.int8_vectorwise_quant(x)
        return bf.int8_mm_dequant(bf.int8_linear_matmul(aq, wq), a_scale, w_scale)

    quick = _suite.quick(ctx)
    ctx.time("time", pipeline, flops=flops, dtype="int8", **quick)
    ctx.time("matmul", lambda: bf.int8_linear_matmul(xq, wq), flops=flops, dtype="int8", **quick)
    ctx.record("weight_mem", (wq.numel() + w_scale.numel() * 4) / _suite.MIB, "MiB")
    _rel_err(ctx, pipeline(), x, w)


@cb.bench(params={"shape": SHAPES, "threshold": [0.0, 6.0]}, requires=("bitsandbytes",))
def linear8bit(ctx: cb.Context, shape: str, threshold: float) -> None:
    """`bnb.nn.Linear8bitLt` inference (int8 weights, fp16 activations and output)."""
    import bitsandbytes as bnb
    import torch

    x, w, flops = _inputs(ctx, shape, torch.float16)
    layer = bnb.nn.Linear8bitLt(
        w.shape[1], w.shape[0], bias=False, has_fp16_weights=False, threshold=threshold
    )
    # Quantization happens when the parameter moves to the device.
    layer.weight = bnb.nn.Int8Params(w.cpu(), requires_grad=False, has_fp16_weights=False)
    layer = layer.to(ctx.device)
    with torch.no_grad():
        ctx.time("time", lambda: layer(x), flops=flops, dtype="int8", **_suite.quick(ctx))
        _rel_err(ctx, layer(x), x, w)
    ctx.record("weight_mem", layer.weight.numel() / _suite.MIB, "MiB")


@cb.bench(params={"shape": SHAPES}, requires=("bitsandbytes",))
def nf4(ctx: cb.Context, shape: str) -> None:
    """`bnb.nn.Linear4bit` with NF4 weights (blocksize 64) and fp16 compute: the
    weight is dequantized to fp16 on the fly, so % of peak is against the fp16 peak."""
    import bitsandbytes as bnb
    import torch

    x, w, flops = _inputs(ctx, shape, torch.float16)
    layer = bnb.nn.Linear4bit(
        w.shape[1], w.shape[0], bias=False, compute_dtype=torch.float16, quant_type="nf4"
    )
    layer.weight = bnb.nn.Params4bit(w.cpu(), requires_grad=False, quant_type="nf4")
    layer = layer.to(ctx.device)
    with torch.no_grad():
        ctx.time("time", lambda: layer(x), flops=flops, dtype="fp16", **_suite.quick(ctx))
        _rel_err(ctx, layer(x), x, w)
    packed = layer.weight.numel() * layer.weight.element_size()
    ctx.record("weight_mem", packed / _suite.MIB, "MiB", note="packed 4-bit data only")
