"""The project's own decoder-only Transformer LM, used by `transformer` and `generation`.

Pre-norm blocks (RMSNorm, Zhang & Sennrich 2019), rotary position embeddings (RoPE, Su et
al. 2021, half-split pairing as in GPT-NeoX), causal multi-head attention through
`scaled_dot_product_attention`, a SwiGLU feed-forward (Shazeer 2020: W2(silu(W1 x) * W3 x)),
no biases anywhere, a final RMSNorm and an untied output head. The sizes are those of the
seed workload (GPT-2 small..xl widths plus a 2.7B), vocabulary 10,000.

Counting (exact, tested against the built model and torch's FlopCounterMode):

    params = V*d (embedding) + L*(4*d^2 + 3*d*f + 2*d) + d (final norm) + d*V (head)
    N      = L*(4*d^2 + 3*d*f) + d*V   (the weights that take part in a matmul)
    training FLOPs per token = 6*N + 12*L*T*d
    forward  FLOPs per token = 2*N +  4*L*T*d

The FLOP convention is PaLM's (Chowdhery et al. 2022, appendix B: 6N + 12LHQT, with
H*Q = d): a multiply-add is 2 FLOPs, backward costs twice forward, attention scores and
the attention-weighted sum are counted over the full T x T matrix (no halving for the
causal mask), and the embedding lookup, norms, RoPE, softmax and activations are not
counted. N excludes the embedding table (a lookup) and the norm gains (no matmul) but
includes the untied head, which is a d x V matmul per token.

`KVCache` is a static cache (fixed `max_len`, gpt-fast style): a step writes its keys and
values at `input_pos` and attends over the whole buffer under a mask, so every decoding
step has the same shapes and `torch.compile` can specialise (and CUDA-graph) it once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class Config:
    d_model: int
    d_ff: int
    n_layers: int
    n_heads: int
    vocab: int = 10_000
    max_len: int = 512
    rope_theta: float = 10_000.0

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def params(self) -> int:
        d, f, L, V = self.d_model, self.d_ff, self.n_layers, self.vocab
        return V * d + L * (4 * d * d + 3 * d * f + 2 * d) + d + d * V

    def matmul_params(self) -> int:
        d, f, L, V = self.d_model, self.d_ff, self.n_layers, self.vocab
        return L * (4 * d * d + 3 * d * f) + d * V

    def train_flops_per_token(self, context: int) -> int:
        return 6 * self.matmul_params() + 12 * self.n_layers * context * self.d_model

    def forward_flops_per_token(self, context: int) -> int:
        return 2 * self.matmul_params() + 4 * self.n_layers * context * self.d_model


# d_model / d_ff / layers / heads of the seed workload.
SIZES = {
    "small": Config(768, 3072, 12, 12),
    "medium": Config(1024, 4096, 24, 16),
    "large": Config(1280, 5120, 36, 20),
    "xl": Config(1600, 6400, 48, 25),
    "2.7B": Config(2560, 10240, 32, 32),
}


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: Tensor) -> Tensor:
        # Normalise in fp32: in bf16 the mean of squares loses too many bits.
        x32 = x.float()
        out = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return out.to(x.dtype) * self.weight


def rope_tables(head_dim: int, max_len: int, theta: float) -> tuple[Tensor, Tensor]:
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x: (batch, heads, time, head_dim); cos/sin: (time, head_dim / 2)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class KVCache(nn.Module):
    def __init__(self, batch: int, cfg: Config, dtype: torch.dtype, device: str) -> None:
        super().__init__()
        shape = (batch, cfg.n_heads, cfg.max_len, cfg.head_dim)
        # Buffers, so torch.compile sees fixed-address state it may mutate in place.
        self.k: Tensor
        self.v: Tensor
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device))
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device))

    def update(self, pos: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        self.k.index_copy_(2, pos, k)
        self.v.index_copy_(2, pos, v)
        return self.k, self.v


class Attention(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(
        self, x: Tensor, cos: Tensor, sin: Tensor, cache: KVCache | None, pos: Tensor | None
    ) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(2)
        q, k, v = (y.transpose(1, 2) for y in (q, k, v))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is None or pos is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            k, v = cache.update(pos, k, v)
            # Position j is visible from query position i when j <= i.
            mask = torch.arange(k.shape[2], device=x.device)[None, :] <= pos[:, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    def __init__(self, d: int, f: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(d, f, bias=False)
        self.w3 = nn.Linear(d, f, bias=False)
        self.w2 = nn.Linear(f, d, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.norm1 = RMSNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.norm2 = RMSNorm(cfg.d_model)
        self.mlp = SwiGLU(cfg.d_model, cfg.d_ff)

    def forward(
        self, x: Tensor, cos: Tensor, sin: Tensor, cache: KVCache | None, pos: Tensor | None
    ) -> Tensor:
        x = x + self.attn(self.norm1(x), cos, sin, cache, pos)
        return x + self.mlp(self.norm2(x))


class TransformerLM(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab, bias=False)
        cos, sin = rope_tables(cfg.head_dim, cfg.max_len, cfg.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.caches: list[KVCache] | None = None

    def setup_cache(self, batch: int, dtype: torch.dtype, device: str) -> None:
        self.caches = [KVCache(batch, self.cfg, dtype, device) for _ in self.blocks]

    def forward(self, tokens: Tensor, pos: Tensor | None = None) -> Tensor:
        """Logits for `tokens` (batch, time). With `pos` (the tokens' positions), keys
        and values go through the static cache set up by `setup_cache`."""
        cos: Tensor = self.cos
        sin: Tensor = self.sin
        if pos is None:
            t = tokens.shape[1]
            cos, sin = cos[:t], sin[:t]
        else:
            cos, sin = cos[pos], sin[pos]
        x = self.embed(tokens)
        for i, block in enumerate(self.blocks):
            cache = self.caches[i] if self.caches is not None and pos is not None else None
            x = block(x, cos, sin, cache, pos)
        return self.head(self.norm(x))
