"""Helpers shared by the built-in benches (not a bench module: the name starts with `_`)."""

from __future__ import annotations

from typing import Any

import commitbench as cb

MIB = 2**20


def quick(ctx: cb.Context) -> dict[str, Any]:
    """`ctx.time` overrides: the smoke profile only checks that the code runs, so one
    warm-up and three repeats; the full profile keeps the harness's adaptive policy."""
    if ctx.profile == "smoke":
        return {"warmup": 1, "repeat": 3}
    return {}


def seed(ctx: cb.Context, value: int = 0) -> None:
    """Same random inputs on every run of a case, so commits compare like with like."""
    import torch

    torch.manual_seed(value)
    if ctx.device == "cuda":
        torch.cuda.manual_seed_all(value)


def sync(ctx: cb.Context) -> None:
    if ctx.device == "cuda":
        import torch

        torch.cuda.synchronize()


def record_cuda_allocated(ctx: cb.Context, name: str) -> None:
    """Memory held by live tensors now (MiB), on a GPU only."""
    if ctx.device == "cuda":
        import torch

        ctx.record(name, torch.cuda.memory_allocated() / MIB, "MiB")


def compile_backend(ctx: cb.Context) -> str:
    """Inductor in the full profile. Smoke uses `aot_eager`: Dynamo capture (fullgraph,
    guards, in-place cache updates) and AOTAutograd run as in full, but no kernels are
    generated, because Inductor's C++ build of even a tiny model takes 30-60 s on a
    2-core CI machine, most of the smoke budget."""
    return ctx.pick(smoke="aot_eager", full="inductor")
