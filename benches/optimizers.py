"""Optimizer step cost and state memory: torch AdamW against bitsandbytes' AdamW8bit,
PagedAdamW and PagedAdamW8bit.

The seed workload is bitsandbytes' optimizer benchmark (tests/test_optim.py): a stack of
10 `Linear(2048, 2048)` layers in fp16, batches of 128 random vectors, cross-entropy
against random labels in [0, 10). Every case uses the same seeded model and data.

- `train_step`: zero the gradients, forward, loss, backward, `optimizer.step()`.
- `optimizer_step`: `optimizer.step()` alone, on the gradients of one backward.
- `state_mem`: bytes of every tensor in `optimizer.state` (moments, and for the 8-bit
  optimizers their block-wise absmax scales), MiB. Paged states live in CUDA managed
  memory and count the same.
- `peak_cuda_mem` (added by the harness): the case's peak of allocated GPU memory.

Paged optimizers need CUDA managed memory; on a CPU bitsandbytes falls back to unpaged
behaviour with a warning, which would measure something else, so those cases skip.

`pressure` is the memory-pressure variant: a filler tensor sized from
`torch.cuda.mem_get_info()` leaves free only half of what the paged optimizer's state
needs, so the driver must page state between host and device; it records the bytes left
free (`free_after_filler`). Oversubscribing managed memory on a GPU that other jobs share
can hang the device, so this case runs only where `COMMITBENCH_OVERSUBSCRIBE=1` says the
GPU is the run's alone; elsewhere it is skipped with that reason.
"""

from __future__ import annotations

import os
from typing import Any

import _suite

import commitbench as cb

OPTIMIZERS = ["adamw", "adamw8bit", "paged_adamw", "paged_adamw8bit"]
DIM, LAYERS, BATCH, CLASSES = 2048, 10, 128, 10


def _optimizer(ctx: cb.Context, name: str, params: Any) -> Any:
    import torch

    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-4)
    if name.startswith("paged") and ctx.device != "cuda":
        ctx.skip("paged optimizers need CUDA managed memory; on a CPU they do not page")
    try:
        import bitsandbytes as bnb
    except ImportError:
        ctx.skip("requires bitsandbytes, which is not installed")
    cls = {
        "adamw8bit": bnb.optim.AdamW8bit,
        "paged_adamw": bnb.optim.PagedAdamW,
        "paged_adamw8bit": bnb.optim.PagedAdamW8bit,
    }[name]
    return cls(params, lr=1e-4)


def _setup(ctx: cb.Context, name: str) -> tuple[Any, Any, Any, Any]:
    import torch

    _suite.seed(ctx)
    dim = ctx.pick(smoke=64, full=DIM)
    batch = ctx.pick(smoke=8, full=BATCH)
    ctx.note(dim=dim, batch=batch)
    with torch.device(ctx.device):
        model = torch.nn.Sequential(*(torch.nn.Linear(dim, dim) for _ in range(LAYERS)))
        model = model.half()
        x = torch.randn(batch, dim, dtype=torch.float16)
        labels = torch.randint(0, CLASSES, (batch,))
    return model, _optimizer(ctx, name, model.parameters()), x, labels


def _state_mib(optimizer: Any) -> float:
    import torch

    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                total += value.numel() * value.element_size()
    return total / _suite.MIB


def _measure(ctx: cb.Context, model: Any, optimizer: Any, x: Any, labels: Any) -> None:
    import torch.nn.functional as F

    def backward() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x).float(), labels).backward()

    def train_step() -> None:
        backward()
        optimizer.step()

    quick = _suite.quick(ctx)
    ctx.time("train_step", train_step, **quick)
    backward()
    ctx.time("optimizer_step", optimizer.step, **quick)
    ctx.record("state_mem", _state_mib(optimizer), "MiB")


@cb.bench(params={"optimizer": OPTIMIZERS})
def step(ctx: cb.Context, optimizer: str) -> None:
    model, opt, x, labels = _setup(ctx, optimizer)
    _measure(ctx, model, opt, x, labels)


@cb.bench(params={"optimizer": ["paged_adamw", "paged_adamw8bit"]}, requires=("cuda",))
def pressure(ctx: cb.Context, optimizer: str) -> None:
    import torch

    if os.environ.get("COMMITBENCH_OVERSUBSCRIBE") != "1":
        ctx.skip(
            "oversubscribes CUDA managed memory, which can hang a shared GPU; "
            "set COMMITBENCH_OVERSUBSCRIBE=1 where the GPU is this run's alone"
        )
    model, opt, x, labels = _setup(ctx, optimizer)
    # One step allocates the paged state, so its size is known before the filler.
    torch.nn.functional.cross_entropy(model(x).float(), labels).backward()
    opt.step()
    state = _state_mib(opt) * _suite.MIB
    torch.cuda.synchronize()
    free, _ = torch.cuda.mem_get_info()
    filler = torch.empty(max(0, int(free - state / 2)), dtype=torch.uint8, device="cuda")
    free_after, _ = torch.cuda.mem_get_info()
    ctx.record("free_after_filler", free_after / _suite.MIB, "MiB", state_mib=state / 2**20)
    _measure(ctx, model, opt, x, labels)
    del filler
