"""Training a decoder-only Transformer LM (benches/_model.py): forward, forward+backward
and a full AdamW step, fp32 and bf16 autocast, sizes small to 2.7B.

The seed workload is the CS336 (Stanford, 2024) assignment-2 benchmark: batch 4, context
512, vocabulary 10,000, random weights and tokens, sizes small (768/3072/12/12), medium
(1024/4096/24/16), large (1280/5120/36/20), xl (1600/6400/48/25) and 2.7B
(2560/10240/32/32) as d_model/d_ff/layers/heads. Its published fp32 figures (small
45.5/93.2 ms forward / forward+backward) came from a timer that is easy to get wrong
(`time.time()` without synchronising, one sample); here every time is device time over
repeated, warmed-up calls.

- `forward`: the training-mode forward (autograd records, the graph is then dropped).
- `forward_backward`: zero the gradients, forward, cross-entropy, backward.
- `train_step`: the same plus `torch.optim.AdamW.step()` (PyTorch's default foreach
  implementation).

FLOPs (the `.tflops` and `.peak_pct` metrics, `.peak_pct` being the model FLOPs
utilization) follow PaLM's convention, documented in _model.py: 2N + 4LTd per token
forward and 6N + 12LTd per token for forward+backward and for the step (the optimizer's
elementwise work is not counted). fp32 runs with PyTorch's defaults (TF32 matmuls off),
so its peak is the fp32 (non-tensor-core) figure; bf16 autocast is measured against the
bf16 peak. An out-of-memory size ends as status `oom` (the worker catches
torch.cuda.OutOfMemoryError), and the next size still runs.

The smoke profile runs the same code with a 2-layer, 64-wide model at context 32 on CPU.
"""

from __future__ import annotations

import contextlib
from typing import Any

import _model
import _suite

import commitbench as cb

BATCH = 4
SMOKE = _model.Config(64, 256, 2, 4)


@cb.bench(params={"size": list(_model.SIZES), "dtype": ["fp32", "bf16"], "context": [512]})
def lm(ctx: cb.Context, size: str, dtype: str, context: int) -> None:
    import torch
    import torch.nn.functional as F

    context = ctx.pick(smoke=32, full=context)
    base = ctx.pick(smoke=SMOKE, full=_model.SIZES[size])
    cfg = _model.Config(base.d_model, base.d_ff, base.n_layers, base.n_heads, max_len=context)
    ctx.note(d_model=cfg.d_model, layers=cfg.n_layers, context=context)
    _suite.seed(ctx)
    with torch.device(ctx.device):
        model = _model.TransformerLM(cfg)
        tokens = torch.randint(0, cfg.vocab, (BATCH, context))
        targets = torch.randint(0, cfg.vocab, (BATCH, context))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def autocast() -> contextlib.AbstractContextManager[Any]:
        if dtype == "bf16":
            return torch.autocast(ctx.device, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward() -> Any:
        with autocast():
            return model(tokens)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        with autocast():
            logits = model(tokens)
        F.cross_entropy(logits.view(-1, cfg.vocab).float(), targets.view(-1)).backward()

    def train_step() -> None:
        forward_backward()
        optimizer.step()

    n_tokens = BATCH * context
    fwd_flops = n_tokens * cfg.forward_flops_per_token(context)
    train_flops = n_tokens * cfg.train_flops_per_token(context)
    quick = _suite.quick(ctx)
    ctx.time("forward", forward, flops=fwd_flops, dtype=dtype, **quick)
    ctx.time("forward_backward", forward_backward, flops=train_flops, dtype=dtype, **quick)
    step = ctx.time("train_step", train_step, flops=train_flops, dtype=dtype, **quick)
    ctx.record("tokens_per_s", n_tokens / step.stats.median, "tokens/s", better="higher")
    ctx.record("params", float(sum(p.numel() for p in model.parameters())), "1")
