"""The CUDA side of harness/profiling.py on one GPU, without a runner or a store:
naive attention and scaled_dot_product_attention (forward and backward) captured as
`--trace` captures a case; prints each table's head, the categories, the memory peak
and its sites, and the softmax/matmul time ratio against their FLOP ratio.

    PYTHONPATH=service python perf/profile_capture_gpu.py [OUTDIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from commitbench.harness import profiling
from commitbench.model import profile as names
from commitbench.model.profile import OpTable

B, H, S, D = 8, 1, 4096, 64


def naive(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    return torch.softmax(scores, dim=-1) @ v


def show(title: str, got: profiling.Capture) -> None:
    metrics = {m.name: m for m in got.metrics}
    print(f"== {title}: capture {got.capture_s:.2f} s, files {dict(got.files)}")
    for part in (None, "forward", "backward"):
        key = names.in_part(names.TIME_PER_ITER, part)
        if key not in metrics:
            continue
        table = OpTable.from_json(metrics[key].properties["table"])
        print(f"-- {part or 'case'}: {table.source}, total {table.total_s * 1e3:.3f} ms/iter")
        for row in table.rows[:8]:
            print(
                f"   {row.share * 100:5.1f}% {row.time_s * 1e6:9.1f} us x{row.calls:g} "
                f"{row.category:17} {row.name[:100]}"
            )
        print("   shares:", {c: round(s * 100, 1) for c, s in table.shares().items() if s})
        for m in (
            names.LAUNCHES_PER_ITER,
            names.HOST_PER_ITER,
            names.DEVICE_PER_ITER,
            names.HOST_OVER_DEVICE,
        ):
            k = names.in_part(m, part)
            if k in metrics:
                print(f"   {k} = {metrics[k].median:.6g} {metrics[k].unit}")
    for m in (names.PEAK_ALLOCATED, names.PEAK_RESERVED):
        if m in metrics:
            print(f"   {m} = {metrics[m].median:.1f} MiB {dict(metrics[m].properties)}")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    q, k, v = (torch.randn(B, H, S, D, device="cuda", requires_grad=True) for _ in range(3))
    grad = torch.randn(B, H, S, D, device="cuda")
    for name, attn in (("naive", naive), ("sdpa", F.scaled_dot_product_attention)):
        y = attn(q, k, v)
        timed = [
            ("forward", lambda attn=attn: attn(q, k, v)),
            ("backward", lambda y=y: torch.autograd.grad(y, (q, k, v), grad, retain_graph=True)),
        ]
        for _, fn in timed:
            fn()
        torch.cuda.synchronize()
        got = profiling.capture(timed, 5, out_dir=out, stem=name)
        show(name, got)
    flops_mm = 2 * (2 * B * H * S * S * D)
    flops_softmax = 5 * B * H * S * S  # max, sub, exp, sum, div per element (approx.)
    print(f"FLOP ratio softmax/matmul (approx.): {flops_softmax / flops_mm:.3f}")


if __name__ == "__main__":
    main()
