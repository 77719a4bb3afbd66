"""Greedy decoding with Hugging Face `transformers`: a LLaMA-architecture causal LM
(`LlamaForCausalLM`) built from a `LlamaConfig` with random weights, measured as
benches/generation.py measures the project's own decoder, so the two tables read alike.

Nothing is downloaded: the model is built from code under a fixed seed (the library's
own initialisation), bf16 on a GPU, fp32 on a CPU. The sizes take the shapes of public
LLaMA-architecture checkpoints (tied input and output embeddings, grouped-query
attention, head size 64), not their weights:

    size   shape of        vocab    hidden  intermediate  layers  heads  kv heads  params
    135M   SmolLM2-135M    49,152   576     1,536         30      9      3         134.5M
    360M   SmolLM2-360M    49,152   960     2,560         32      15     5         361.8M
    1B     Llama-3.2-1B    128,256  2,048   8,192         16      32     8         1,235.8M

(`params` is recorded with every case). Each case prefills a random prompt, then
generates 128 tokens greedily, in a loop written here around the model's own forward
and a `transformers.cache_utils` cache (`DynamicCache`, which grows by concatenation, or
`StaticCache`, preallocated for prompt + 128 tokens): `model.generate` gives no per-token
time. The loop's tokens equal `model.generate(..., do_sample=False)`'s
(tests/benches/test_hf_llama.py).

- `ttft`: time to first token: empty the cache (`reset()` of a static one, as
  `generate` does between calls; a dynamic one is cropped), prefill the prompt (logits
  of the last position only), argmax.
- `next_token`: one sample per generated token, positions prompt..prompt+127 in order
  (a warm-up generation runs first, untimed); its mean is the mean time per output
  token, `next_token.p95` the 95th percentile of the same samples (model/stats.py).
- `tokens_per_s`: batch / mean of `next_token`: tokens of all sequences per second, so
  at batch 1 it is 1 / mean, as in generation.py; at batch 4 it counts 4 per step.
- `compile_time` (compiled only): wall time of the first prefill and the first three
  steps (compilation, then CUDA-graph warm-up and recording), apart from the timings.
- `params`; the harness adds `peak_cuda_mem` (GPU) and `peak_rss` to every ok case.

`compiled` compiles the one-token step, not the prefill, as `generate` does: with a
static cache `fullgraph=True` and, with Inductor on a GPU, `mode="reduce-overhead"`
(CUDA graphs); with a dynamic cache the key/value length changes every step, so no CUDA
graphs (default mode, dynamic shapes after the first recompilation).

Two benches, so that the default grid runs in minutes on one GPU:

- `generate`: every size x batch 1, 4 x prompt 128, 1024 with SDPA, a dynamic cache,
  eager (the defaults of `generate`).
- `variants`: attention eager, sdpa, flash_attention_2 x cache dynamic, static x mode
  eager, compiled, at size 135M, batch 1, prompt 128: the configuration of
  generation.decode (its small decoder has 128.6M parameters), so the two compare row by
  row. Its sdpa/dynamic/eager case is the same configuration as one `generate` case:
  the variants' own baseline.

Both benches take all six parameters, so `--param` widens either grid (`--param
size=135M,1B` on `variants`). flash_attention_2 runs only where the `flash_attn`
package is installed and CUDA is available; elsewhere the case is skipped with that
reason. Without `transformers` (`pip install 'commitbench[hf]'`) every case is skipped
with that reason.

The smoke profile builds a 2-layer, 64-wide model (vocabulary 1,024, 4 heads, 2 kv
heads) whatever the size, with a prompt of prompt/16 tokens (8 or 64) and 8 new tokens,
and compiles with `aot_eager` (_suite.compile_backend).
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import _suite

import commitbench as cb

NEW = 128
INSTALL = "pip install 'commitbench[hf]'"

_SHAPE = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers")
_HEADS = ("num_attention_heads", "num_key_value_heads")
SIZES: dict[str, tuple[int, ...]] = {
    # vocab, hidden, intermediate, layers, heads, kv heads
    "135M": (49152, 576, 1536, 30, 9, 3),
    "360M": (49152, 960, 2560, 32, 15, 5),
    "1B": (128256, 2048, 8192, 16, 32, 8),
}
SMOKE = (1024, 64, 256, 2, 4, 2)
ATTN = ["eager", "sdpa", "flash_attention_2"]
CACHES = ["dynamic", "static"]
MODES = ["eager", "compiled"]


def require_transformers(ctx: cb.Context) -> None:
    """Skip the case where transformers is absent; any other import error is a failure
    (a broken install must not read as a skip)."""
    try:
        import transformers  # noqa: F401
    except ModuleNotFoundError as e:
        if e.name != "transformers":
            raise
        ctx.skip(f"requires transformers, which is not installed: {INSTALL}")


def llama_config(shape: tuple[int, ...], attn: str, max_len: int, **extra: Any) -> Any:
    from transformers import LlamaConfig

    values = dict(zip(_SHAPE + _HEADS, shape, strict=True))
    return LlamaConfig(
        **values,
        max_position_embeddings=max(2048, max_len),
        tie_word_embeddings=True,
        attn_implementation=attn,
        **extra,
    )


def build(ctx: cb.Context, size: str, attn: str, max_len: int) -> Any:
    """The seeded random-init model on the case's device, in inference mode. Built in
    its dtype (torch's default dtype set meanwhile, as `from_pretrained(dtype=...)`
    does; the rotary frequencies stay fp32), so no fp32 copy counts in peak_cuda_mem."""
    import torch
    from transformers import LlamaForCausalLM

    if size not in SIZES:
        raise ValueError(f"size {size!r} is not one of {', '.join(SIZES)}")
    _suite.seed(ctx)
    cfg = llama_config(ctx.pick(smoke=SMOKE, full=SIZES[size]), attn, max_len)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16 if ctx.device == "cuda" else torch.float32)
    try:
        with torch.device(ctx.device):
            model = LlamaForCausalLM(cfg).eval()
    finally:
        torch.set_default_dtype(previous)
    return model


def make_cache(model: Any, kind: str, max_len: int) -> Any:
    """A `DynamicCache` or a `StaticCache` of `max_len` positions for `model` (both
    allocate on their first update, from the key/value states: batch, device, dtype)."""
    from transformers import cache_utils

    if kind == "static":
        return cache_utils.StaticCache(config=model.config, max_cache_len=max_len)
    return cache_utils.DynamicCache(config=model.config)


class Decoder:
    """Greedy decoding of one batch of prompts with `model`'s forward and `cache`.

    `first_token` restarts at the end of the prompt (cache reset, prefill, argmax);
    each `next_token` feeds the last token back at the next position. `step`, when
    given, replaces the one-token step (a compiled `one_token`)."""

    def __init__(self, model: Any, cache: Any, prompt: Any, new: int) -> None:
        import torch
        from transformers.cache_utils import StaticCache

        self.model, self.cache, self.prompt, self.new = model, cache, prompt, new
        self._static = isinstance(cache, StaticCache)
        n, dev = prompt.shape[1], prompt.device
        self._prompt_pos = torch.arange(n, device=dev)
        self._step_pos = [torch.tensor([n + i], device=dev) for i in range(new)]
        names = set(inspect.signature(model.forward).parameters)
        # transformers 5 renamed past_key_values to cache and dropped cache_position,
        # where 4.57's static cache writes each step's keys and values.
        self._cache_arg = "cache" if "cache" in names else "past_key_values"
        self._with_cache_position = "cache_position" in names
        self._keep_arg = next(
            (k for k in ("logits_to_keep", "num_logits_to_keep") if k in names), None
        )
        self.step = self.one_token
        self.token: Any = None
        self.i = 0

    def one_token(self, tokens: Any, pos: Any) -> Any:
        """The forward of `tokens` at positions `pos`, argmax of the last logits."""
        kwargs: dict[str, Any] = {self._cache_arg: self.cache, "position_ids": pos[None]}
        if self._with_cache_position:
            kwargs["cache_position"] = pos
        if self._keep_arg:
            kwargs[self._keep_arg] = 1
        logits = self.model(input_ids=tokens, use_cache=True, **kwargs).logits
        return logits[:, -1].argmax(-1, keepdim=True)

    def restart(self) -> None:
        """Empty the cache. `reset()` zeroes a static cache (what `generate` does between
        calls); a dynamic one is cropped to nothing, as transformers 4.x's `reset()`
        zeroes its tensors but keeps their length."""
        if self._static:
            self.cache.reset()
            return
        length = int(self.cache.get_seq_length())
        if length:
            self.cache.crop(-length)

    def first_token(self) -> Any:
        self.restart()
        self.token, self.i = self.one_token(self.prompt, self._prompt_pos), 0
        return self.token

    def next_token(self) -> Any:
        if self.i == self.new:
            # Only past a generation's end, as when --trace re-runs the timed calls:
            # the static cache holds prompt + new positions, so start over.
            self.first_token()
        # Clone: with CUDA graphs the step's output buffer is overwritten by the next replay.
        self.token = self.step(self.token, self._step_pos[self.i]).clone()
        self.i += 1
        return self.token

    def generate(self) -> Any:
        """The first token and `new` more, (batch, new + 1)."""
        import torch

        tokens = [self.first_token()] + [self.next_token() for _ in range(self.new)]
        return torch.cat(tokens, dim=1)


def compile_step(ctx: cb.Context, decoder: Decoder, cache: str) -> None:
    import torch

    torch._dynamo.reset()  # every case compiles afresh, whatever ran before it
    backend = _suite.compile_backend(ctx)
    if cache == "dynamic":
        decoder.step = torch.compile(decoder.one_token, backend=backend)
    elif backend == "inductor" and ctx.device == "cuda":
        decoder.step = torch.compile(decoder.one_token, mode="reduce-overhead", fullgraph=True)
    else:
        decoder.step = torch.compile(decoder.one_token, backend=backend, fullgraph=True)


def _check_attn(ctx: cb.Context, attn: str) -> None:
    if attn != "flash_attention_2":
        return
    if ctx.device != "cuda":
        ctx.skip("flash_attention_2 requires CUDA, which is not available")
    import importlib.util

    if importlib.util.find_spec("flash_attn") is None:
        ctx.skip("flash_attention_2 requires flash_attn, which is not installed")


def measure(
    ctx: cb.Context, size: str, batch: int, prompt: int, attn: str, cache: str, mode: str
) -> None:
    """One case of either bench: build, warm up, time, record."""
    import torch

    require_transformers(ctx)
    _check_attn(ctx, attn)
    prompt_len = ctx.pick(smoke=prompt // 16, full=prompt)
    new = ctx.pick(smoke=8, full=NEW)
    model = build(ctx, size, attn, prompt_len + new)
    cfg = model.config
    ctx.note(d_model=cfg.hidden_size, layers=cfg.num_hidden_layers, prompt=prompt_len, new=new)
    tokens = torch.randint(0, cfg.vocab_size, (batch, prompt_len), device=ctx.device)
    decoder = Decoder(model, make_cache(model, cache, prompt_len + new), tokens, new)
    if mode == "compiled":
        compile_step(ctx, decoder, cache)

    with torch.no_grad():
        t0 = time.perf_counter()
        decoder.first_token()
        for _ in range(3):
            decoder.next_token()
        _suite.sync(ctx)
        warm_s = time.perf_counter() - t0
        for _ in range(new - 3):  # finish the warm-up generation
            decoder.next_token()

        ctx.time("ttft", decoder.first_token, **_suite.quick(ctx))
        decoder.first_token()  # restart at the prompt's end, then exactly `new` timed steps
        timing = ctx.time("next_token", decoder.next_token, warmup=0, repeat=new)

    ctx.record("next_token.p95", timing.stats.p95, "s")
    mean = sum(timing.samples) / len(timing.samples)
    ctx.record("tokens_per_s", batch / mean, "tokens/s", better="higher")
    if mode == "compiled":
        ctx.record("compile_time", warm_s, "s")
    ctx.record("params", float(model.num_parameters()), "1")


@cb.bench(
    params={
        "size": list(SIZES),
        "batch": [1, 4],
        "prompt": [128, 1024],
        "attn": ["sdpa"],
        "cache": ["dynamic"],
        "mode": ["eager"],
    }
)
def generate(
    ctx: cb.Context, size: str, batch: int, prompt: int, attn: str, cache: str, mode: str
) -> None:
    """Sizes x batch x prompt length with `generate`'s defaults (SDPA, dynamic cache)."""
    measure(ctx, size, batch, prompt, attn, cache, mode)


@cb.bench(
    params={
        "size": ["135M"],
        "batch": [1],
        "prompt": [128],
        "attn": ATTN,
        "cache": CACHES,
        "mode": MODES,
    }
)
def variants(
    ctx: cb.Context, size: str, batch: int, prompt: int, attn: str, cache: str, mode: str
) -> None:
    """Attention implementation x KV cache x torch.compile at one size."""
    measure(ctx, size, batch, prompt, attn, cache, mode)
