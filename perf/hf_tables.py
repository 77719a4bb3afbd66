"""Markdown tables of a `hf_llama` run (benches/hf_llama.py), read from its CSV results,
beside the project's own decoder (`generation.decode`) where the same folders hold it.

    python perf/hf_tables.py examples/results/h200-hf examples/results/h100-80gb-hbm3

Reads run directories as perf/suite_tables.py does (medians of the raw samples, but the
mean time per token is the mean of its 128 samples, as tokens/s is; a cell
of a case that did not end ok shows its status, "skipped" for flash_attention_2 without
flash_attn) and prints two tables: the variants at batch 1, prompt 128 (attention x KV
cache x torch.compile) with generation.decode's two rows above them, then the sizes x
batch x prompt grid of `hf_llama.generate`. tokens/s counts every sequence of the batch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from suite_tables import Cases, _cell, load

# The parameter values of the default grids (benches/hf_llama.py).
SIZES = ("135M", "360M", "1B")
ATTN = ("eager", "sdpa", "flash_attention_2")
COLUMNS = ["TTFT ms", "mean ms/token", "p95 ms/token", "tokens/s", "compile s", "peak GiB"]


def label(bench: str, size: str, batch: int, prompt: int, attn: str, cache: str, mode: str) -> str:
    """The case id (keys sorted, as cases.CaseKey writes them)."""
    return (
        f"hf_llama.{bench}[attn={attn},batch={batch},cache={cache},mode={mode},"
        f"prompt={prompt},size={size}]"
    )


def tables(cases: Cases, means: Cases, status: dict[str, str]) -> str:
    """`cases`: medians; `means`: means, for the mean time per token (tokens/s is the
    batch over that mean)."""
    out: list[str] = []

    def table(title: str, head: list[str], rows: list[list[str]]) -> None:
        out.append(f"\n#### {title}\n")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        out.extend("| " + " | ".join(r) + " |" for r in rows)

    def timings(case: str) -> list[str]:
        return [
            _cell(cases, status, case, "ttft", 1e3),
            _cell(means, status, case, "next_token", 1e3),
            _cell(cases, status, case, "next_token.p95", 1e3),
            _cell(cases, status, case, "tokens_per_s", 1.0),
            _cell(cases, status, case, "compile_time", 1.0),
            _cell(cases, status, case, "peak_cuda_mem", 1 / 1024),
        ]

    def params(case: str) -> str:
        return _cell(cases, status, case, "params", 1e-6)

    rows = []
    for mode in ("eager", "compiled"):
        own = f"generation.decode[mode={mode}]"
        if own in cases or own in status:
            rows.append(["commitbench decoder (small)", "sdpa", "static", mode, params(own)])
            rows[-1] += timings(own)
    for attn in ATTN:
        for cache in ("dynamic", "static"):
            for mode in ("eager", "compiled"):
                for size in SIZES:
                    case = label("variants", size, 1, 128, attn, cache, mode)
                    if case in cases or case in status:
                        rows.append([f"transformers LLaMA {size}", attn, cache, mode, params(case)])
                        rows[-1] += timings(case)
    table(
        "Generation: batch 1, 128-token prompt, 128 new tokens",
        ["model", "attention", "KV cache", "mode", "params M", *COLUMNS],
        rows,
    )
    rows = []
    for size in SIZES:
        for batch in (1, 4):
            for prompt in (128, 1024):
                case = label("generate", size, batch, prompt, "sdpa", "dynamic", "eager")
                no_compile = [t for i, t in enumerate(timings(case)) if COLUMNS[i] != "compile s"]
                rows.append([size, params(case), str(batch), str(prompt), *no_compile])
    table(
        "transformers LLaMA, SDPA, dynamic KV cache, eager: 128 new tokens",
        ["size", "params M", "batch", "prompt", *[c for c in COLUMNS if c != "compile s"]],
        rows,
    )
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path)
    args = p.parse_args()
    cases, status, gpus = load(args.folders)
    means, _, _ = load(args.folders, stat="mean")
    print("runs on: " + "; ".join(gpus))
    print(tables(cases, means, status))


if __name__ == "__main__":
    main()
