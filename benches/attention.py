"""Single-head attention over a grid of head sizes and sequence lengths: naive PyTorch,
`scaled_dot_product_attention`, and `torch.compile` of the naive one; forward and
backward, and the memory held just before the backward.

The seed workload is the CS336 (Stanford, 2024) assignment-2 attention benchmark: batch
8, one head, d in {16, 32, 64, 128} x sequence in {256, 1024, 4096, 8192, 16384}, fp32,
no mask, random Q, K, V. Each (impl, d, seq) is its own case, so a size that runs out of
GPU memory ends as status `oom` for that cell alone (the worker catches
torch.cuda.OutOfMemoryError and empties the cache) and the grid carries on.

- `forward`: `attn(q, k, v)` with inputs that require grad, as in training.
- `backward`: gradients of one fixed forward (its graph kept with `retain_graph=True`)
  with respect to q, k and v, for a fixed random output gradient.
- `memory_before_backward`: `torch.cuda.memory_allocated()` after that forward (inputs,
  output and whatever the forward saved for the backward), GPU only.
- `compile_time` (compiled only): wall time of the first forward and backward of this
  cell, which include Dynamo/Inductor compilation for a new shape. One compiled function
  serves the whole worker, so with PyTorch's default automatic dynamic shapes the second
  shape compiles a dynamic graph that later cells reuse, as in a real program.

FLOPs: forward 4*B*S^2*d (Q K^T and P V, a multiply-add being 2), backward twice that;
softmax and scaling are not counted. `.peak_pct` is against the fp32 peak.

The backward is repeated on a kept graph, which Inductor forbids when it donates the
saved buffers to the backward, so donation is switched off
(`torch._functorch.config.donated_buffer = False`) for the compiled cells; it changes
memory reuse, not the kernels.

The smoke profile runs every cell at d=16, sequence 32, batch 2 on CPU (one shape, so
the compiled cells compile once) with the `aot_eager` backend (_suite.compile_backend).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import _suite

import commitbench as cb

BATCH = 8
_compiled: dict[str, Callable[..., Any]] = {}


def naive(q: Any, k: Any, v: Any) -> Any:
    import torch

    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    return torch.softmax(scores, dim=-1) @ v


def _impl(ctx: cb.Context, name: str) -> Callable[..., Any]:
    import torch
    import torch.nn.functional as F

    if name == "naive":
        return naive
    if name == "sdpa":
        return F.scaled_dot_product_attention
    if "fn" not in _compiled:
        import torch._functorch.config

        torch._functorch.config.donated_buffer = False
        _compiled["fn"] = torch.compile(naive, backend=_suite.compile_backend(ctx))
    return _compiled["fn"]


@cb.bench(
    params={
        "impl": ["naive", "sdpa", "compiled"],
        "d": [16, 32, 64, 128],
        "seq": [256, 1024, 4096, 8192, 16384],
    }
)
def single_head(ctx: cb.Context, impl: str, d: int, seq: int) -> None:
    import torch

    if ctx.device == "cuda":
        # Each cell starts from an empty cache, so whether it fits does not depend on how
        # the previous cell fragmented it (seen: an 8 GiB block refused with 7.9 GiB
        # reserved but free after the cell before).
        torch.cuda.empty_cache()
    batch = ctx.pick(smoke=2, full=BATCH)
    d = ctx.pick(smoke=16, full=d)
    seq = ctx.pick(smoke=32, full=seq)
    ctx.note(batch=batch, d=d, seq=seq)
    _suite.seed(ctx)
    # (batch, 1 head, seq, d): SDPA's fused kernels take 4-D inputs only; 3-D would
    # silently fall back to the math path, which is the naive one again.
    shape = (batch, 1, seq, d)
    q, k, v = (torch.randn(shape, device=ctx.device, requires_grad=True) for _ in range(3))
    grad_out = torch.randn(shape, device=ctx.device)
    attn = _impl(ctx, impl)
    inputs = (q, k, v)

    compile_s = None
    if impl == "compiled":
        t0 = time.perf_counter()
        first = attn(q, k, v)
        torch.autograd.grad(first, inputs, grad_out)
        _suite.sync(ctx)
        compile_s = time.perf_counter() - t0
        del first

    flops = 4 * batch * seq * seq * d
    quick = _suite.quick(ctx)
    ctx.time("forward", lambda: attn(q, k, v), flops=flops, dtype="fp32", **quick)
    out = attn(q, k, v)
    _suite.sync(ctx)
    _suite.record_cuda_allocated(ctx, "memory_before_backward")
    ctx.time(
        "backward",
        lambda: torch.autograd.grad(out, inputs, grad_out, retain_graph=True),
        flops=2 * flops,
        dtype="fp32",
        **quick,
    )
    if compile_s is not None:
        ctx.record("compile_time", compile_s, "s")
