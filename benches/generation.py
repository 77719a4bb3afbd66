"""Autoregressive decoding with a small random-init decoder: time to first token and
time per next token, eager against `torch.compile` with a static KV cache.

The model is the project's own (benches/_model.py) at the `small` size (768/3072/12/12,
vocabulary 10,000), so nothing is downloaded and CI needs nothing beyond torch. Batch 1,
a random prompt of 128 tokens, then 128 greedy tokens, bf16 weights on a GPU (fp32 on a
CPU). Both modes run the same code with the same static cache (gpt-fast's design: fixed
shapes, attention over the whole cache under a mask); `compiled` compiles the prefill
and the one-token step with `fullgraph=True`, the step with `mode="reduce-overhead"`
(CUDA graphs) on a GPU.

- `ttft`: time to first token: the prefill of the prompt and the argmax of its last
  logits.
- `next_token`: one sample per generated token, positions 128..255 in order (a warm-up
  generation runs first, untimed), so its mean is the mean time per next token;
  `next_token.p95` is the 95th percentile of the same samples (interpolated between
  order statistics, as every percentile in commitbench: model/stats.py) and
  `tokens_per_s` is 1 / mean.
- `compile_time` (compiled only): wall time of the first prefill and the first three
  steps (compilation, then CUDA-graph warm-up and recording), measured apart from the
  timings above.

The smoke profile uses a 2-layer, 64-wide model, a prompt of 8 and 8 new tokens, and
compiles with the `aot_eager` backend (see _suite.compile_backend).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import _model
import _suite

import commitbench as cb

PROMPT, NEW = 128, 128


def _build(ctx: cb.Context, prompt: int, new: int) -> Any:
    import torch

    base = ctx.pick(smoke=_model.Config(64, 256, 2, 4), full=_model.SIZES["small"])
    cfg = _model.Config(base.d_model, base.d_ff, base.n_layers, base.n_heads, max_len=prompt + new)
    ctx.note(d_model=cfg.d_model, layers=cfg.n_layers, prompt=prompt, new=new)
    dtype = torch.bfloat16 if ctx.device == "cuda" else torch.float32
    with torch.device(ctx.device):
        model = _model.TransformerLM(cfg).to(dtype).eval()
    model.setup_cache(1, dtype, ctx.device)
    return model


@cb.bench(params={"mode": ["eager", "compiled"]})
def decode(ctx: cb.Context, mode: str) -> None:
    import torch

    prompt_len = ctx.pick(smoke=8, full=PROMPT)
    new = ctx.pick(smoke=8, full=NEW)
    _suite.seed(ctx)
    model = _build(ctx, prompt_len, new)
    prompt = torch.randint(0, model.cfg.vocab, (1, prompt_len), device=ctx.device)
    prompt_pos = torch.arange(prompt_len, device=ctx.device)
    step_pos = [torch.tensor([prompt_len + i], device=ctx.device) for i in range(new)]

    def prefill(tokens: Any, pos: Any) -> Any:
        return model(tokens, pos)[:, -1].argmax(-1, keepdim=True)

    def one_token(token: Any, pos: Any) -> Any:
        return model(token, pos)[:, -1].argmax(-1, keepdim=True)

    run_prefill: Callable[[Any, Any], Any] = prefill
    run_step: Callable[[Any, Any], Any] = one_token
    if mode == "compiled":
        backend = _suite.compile_backend(ctx)
        run_prefill = torch.compile(prefill, fullgraph=True, backend=backend)
        if backend == "inductor" and ctx.device == "cuda":
            run_step = torch.compile(one_token, mode="reduce-overhead", fullgraph=True)
        else:
            run_step = torch.compile(one_token, fullgraph=True, backend=backend)

    state: dict[str, Any] = {"token": None, "i": 0}

    def first_token() -> Any:
        state["token"], state["i"] = run_prefill(prompt, prompt_pos).clone(), 0
        return state["token"]

    def next_token() -> Any:
        # Clone: with CUDA graphs the step's output buffer is overwritten by the next replay.
        state["token"] = run_step(state["token"], step_pos[state["i"] % new]).clone()
        state["i"] += 1
        return state["token"]

    with torch.no_grad():
        t0 = time.perf_counter()
        first_token()
        for _ in range(3):
            next_token()
        _suite.sync(ctx)
        warm_s = time.perf_counter() - t0
        for _ in range(new - 3):  # finish the warm-up generation
            next_token()

        ctx.time("ttft", first_token, **_suite.quick(ctx))
        first_token()  # restart at the prompt's end, then exactly `new` timed steps
        timing = ctx.time("next_token", next_token, warmup=0, repeat=new)

    ctx.record("next_token.p95", timing.stats.p95, "s")
    mean = sum(timing.samples) / len(timing.samples)
    ctx.record("tokens_per_s", 1.0 / mean, "tokens/s", better="higher")
    if mode == "compiled":
        ctx.record("compile_time", warm_s, "s")
