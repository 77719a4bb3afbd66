"""benches/hf_llama.py: the sizes' parameter counts, the hand-written greedy loop against
`model.generate`, the smoke profile through real workers (metric names and the
relations between them), and every case skipped with the reason where transformers
cannot be imported."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import hf_llama  # benches/ is on sys.path (conftest.py), as in a worker
import pytest
import torch
from transformers import LlamaForCausalLM  # the [hf] extra, which [bench] includes

import commitbench as cb
from commitbench.harness.probe import Probe
from commitbench.model.cases import CaseKey
from commitbench.model.state import is_state
from commitbench.model.stats import percentile
from commitbench.runner.launcher import WorkerOptions, run_module

from .conftest import BENCHES
from .test_smoke import metric, smoke

# The published parameter counts of the checkpoints whose shapes the sizes take
# (SmolLM2-135M, SmolLM2-360M, Llama-3.2-1B: tied embeddings).
PARAMS = {"135M": 134_515_008, "360M": 361_821_120, "1B": 1_235_814_400}
# The smoke model: tied 1024 x 64 embedding + 2 x (q 64x64, k 64x32, v 64x32, o 64x64,
# 3 x 64x256 MLP, 2 norms of 64) + the final norm.
SMOKE_PARAMS = 1024 * 64 + 2 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 256 + 2 * 64) + 64
NEW = 8


@pytest.mark.parametrize("size", list(hf_llama.SIZES))
def test_sizes_have_the_parameters_of_the_checkpoints_they_copy(size: str) -> None:
    cfg = hf_llama.llama_config(hf_llama.SIZES[size], "sdpa", 1152)
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    assert model.num_parameters() == PARAMS[size]
    assert model.lm_head.weight is model.model.embed_tokens.weight


def _tiny(attn: str, batch: int, prompt: int) -> tuple[Any, Any]:
    """The smoke model, with weights large enough (init std 1, not 0.02) that greedy
    decoding changes token from step to step, so a wrong position or cache shows."""
    torch.manual_seed(0)
    cfg = hf_llama.llama_config(hf_llama.SMOKE, attn, prompt + NEW, initializer_range=1.0)
    model = LlamaForCausalLM(cfg).eval()
    return model, torch.randint(0, cfg.vocab_size, (batch, prompt))


@pytest.mark.parametrize("cache", hf_llama.CACHES)
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_the_greedy_loop_decodes_what_generate_does(attn: str, cache: str) -> None:
    model, prompt = _tiny(attn, batch=2, prompt=8)
    decoder = hf_llama.Decoder(model, hf_llama.make_cache(model, cache, 8 + NEW), prompt, NEW)
    with torch.no_grad():
        ours = decoder.generate()
        again = decoder.generate()  # the cache is reset at the first token
        ref = model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=NEW + 1,
            do_sample=False,
        )[:, 8:]
    assert ours.shape == (2, NEW + 1)
    assert len(set(ours[0].tolist())) > 3  # not one token repeated
    assert torch.equal(ours, ref)
    assert torch.equal(again, ref)


@pytest.mark.slow
@pytest.mark.parametrize("cache", hf_llama.CACHES)
def test_the_compiled_step_decodes_what_the_eager_one_does(cache: str) -> None:
    model, prompt = _tiny("sdpa", batch=1, prompt=8)
    eager = hf_llama.Decoder(model, hf_llama.make_cache(model, cache, 8 + NEW), prompt, NEW)
    compiled = hf_llama.Decoder(model, hf_llama.make_cache(model, cache, 8 + NEW), prompt, NEW)
    ctx = cb.Context(CaseKey.of("hf_llama.variants"), "smoke", probe=Probe("cpu"))
    hf_llama.compile_step(ctx, compiled, cache)  # aot_eager, as in the smoke profile
    assert compiled.step is not compiled.one_token
    with torch.no_grad():
        assert torch.equal(compiled.generate(), eager.generate())


def test_a_step_past_the_end_starts_a_new_generation() -> None:
    """--trace re-runs the timed calls after the case: next_token past `new` steps must
    not overflow the static cache."""
    model, prompt = _tiny("sdpa", batch=1, prompt=8)
    decoder = hf_llama.Decoder(model, hf_llama.make_cache(model, "static", 8 + NEW), prompt, NEW)
    with torch.no_grad():
        ref = decoder.generate()
        extra = decoder.next_token()
    assert decoder.i == 1
    assert torch.equal(extra, ref[:, 1:2])


def _ok(label: str) -> Any:
    (result,) = [r for r in smoke("hf_llama") if r.case.label == label]
    assert result.status == "ok", result.error
    return result


@pytest.mark.slow
def test_smoke_cases_record_generations_metrics_and_their_relations() -> None:
    results = smoke("hf_llama")
    assert len(results) == 12 + 12
    for r in results:
        if r.case.params_dict["attn"] == "flash_attention_2":
            assert r.status == "skipped"
            assert r.error == "flash_attention_2 requires CUDA, which is not available"
            continue
        assert r.status == "ok", f"{r.case.label}: {r.error}"
        compiled = r.case.params_dict["mode"] == "compiled"
        names = {m.name for m in r.metrics if not is_state(m.name)}
        assert names == {
            "ttft",
            "next_token",
            "next_token.p95",
            "tokens_per_s",
            "params",
            "peak_rss",
        } | ({"compile_time"} if compiled else set())
        steps = next(m for m in r.metrics if m.name == "next_token").samples
        assert steps is not None and len(steps) == NEW
        assert metric(r, "next_token.p95") == percentile(sorted(steps), 95)
        batch = r.case.params_dict["batch"]
        assert isinstance(batch, int)
        assert metric(r, "tokens_per_s") == batch / (sum(steps) / len(steps))
        assert metric(r, "ttft") > 0
        assert metric(r, "params") == SMOKE_PARAMS == 188_736
        if compiled:
            # The first three steps include compiling them: longer than any timed step.
            assert metric(r, "compile_time") > max(steps)


@pytest.mark.slow
def test_smoke_notes_the_prompt_it_ran() -> None:
    for prompt, used in ((128, 8), (1024, 64)):
        label = (
            f"hf_llama.generate[attn=sdpa,batch=4,cache=dynamic,mode=eager,prompt={prompt},size=1B]"
        )
        result = _ok(label)
        ttft = next(m for m in result.metrics if m.name == "ttft")
        assert ttft.properties["used"] == {"d_model": 64, "layers": 2, "prompt": used, "new": NEW}


# Makes `import transformers` fail as it does where the package is not installed, in the
# worker process only (a directory on its PYTHONPATH; `site` imports sitecustomize).
BLOCK = """
import importlib.abc, sys

class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "transformers" or name.startswith("transformers."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Absent())
"""


@pytest.mark.slow
def test_without_transformers_every_case_is_skipped_with_the_install_hint(
    tmp_path: Path,
) -> None:
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(BLOCK), encoding="utf-8")
    options = WorkerOptions(
        profile="smoke",
        device="cpu",
        timeout_s=120,
        pythonpath=(tmp_path, BENCHES),
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    results = [run.result for run in run_module("hf_llama", options)]
    assert len(results) == 24
    for r in results:
        assert r.status == "skipped", f"{r.case.label}: {r.status} {r.error}"
        assert r.error == (
            "requires transformers, which is not installed: pip install 'commitbench[hf]'"
        )
