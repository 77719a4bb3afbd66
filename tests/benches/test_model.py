"""The suite's Transformer LM: parameter and FLOP counts against the formulas in
benches/_model.py, and the static KV cache against recomputing the whole sequence."""

from __future__ import annotations

import _model  # benches/ is on sys.path (conftest.py), as in a worker
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

TINY = _model.Config(d_model=64, d_ff=160, n_layers=2, n_heads=4, vocab=1000, max_len=32)


def test_small_has_128_6m_parameters_with_untied_head() -> None:
    cfg = _model.SIZES["small"]
    # 10,000 x 768 embedding + 12 x (4 x 768^2 + 3 x 768 x 3072 + 2 x 768) + 768 + 768 x 10,000
    assert cfg.params() == 128_625_408
    with torch.device("meta"):
        model = _model.TransformerLM(cfg)
    assert sum(p.numel() for p in model.parameters()) == 128_625_408
    assert model.head.weight is not model.embed.weight  # untied


@pytest.mark.parametrize("size", list(_model.SIZES))
def test_every_size_builds_with_the_counted_parameters(size: str) -> None:
    cfg = _model.SIZES[size]
    with torch.device("meta"):
        model = _model.TransformerLM(cfg)
    assert sum(p.numel() for p in model.parameters()) == cfg.params()
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert matmul == cfg.matmul_params()


def test_flops_match_6n_plus_12ltd_as_torch_counts_them() -> None:
    """FlopCounterMode counts matmuls and attention (2 FLOPs per multiply-add, the full
    T x T score matrix, backward 2x forward): the PaLM convention the formula states.
    SDPA runs on its math backend here: the CPU's fused kernel is not a counted op, the
    math one is made of counted matmuls (and computes the whole masked matrix)."""
    torch.manual_seed(0)
    batch, context = 2, 32
    model = _model.TransformerLM(TINY)
    tokens = torch.randint(0, TINY.vocab, (batch, context))

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as forward:
        logits = model(tokens)
    assert forward.get_total_flops() == batch * context * TINY.forward_flops_per_token(context)

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as training:
        logits = model(tokens)
        torch.nn.functional.cross_entropy(logits.view(-1, TINY.vocab), tokens.view(-1)).backward()
    expected = batch * context * TINY.train_flops_per_token(context)
    assert training.get_total_flops() == expected
    # 6N + 12LTd, spelled out once more for the tiny model
    n = 2 * (4 * 64 * 64 + 3 * 64 * 160) + 64 * 1000
    assert expected == batch * context * (6 * n + 12 * 2 * context * 64)


def test_static_cache_decodes_what_the_full_forward_predicts() -> None:
    torch.manual_seed(0)
    model = _model.TransformerLM(TINY).eval()
    prompt = torch.randint(0, TINY.vocab, (1, 8))
    model.setup_cache(1, torch.float32, "cpu")
    with torch.no_grad():
        cached = [model(prompt, torch.arange(8))[:, -1].argmax(-1, keepdim=True)]
        for i in range(8):
            step = model(cached[-1], torch.tensor([8 + i]))
            cached.append(step[:, -1].argmax(-1, keepdim=True))
        sequence = prompt
        recomputed = []
        for _ in range(9):
            nxt = model(sequence)[:, -1].argmax(-1, keepdim=True)
            recomputed.append(nxt)
            sequence = torch.cat([sequence, nxt], dim=1)
    assert torch.cat(cached, 1).tolist() == torch.cat(recomputed, 1).tolist()
