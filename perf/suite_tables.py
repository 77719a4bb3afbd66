"""Markdown headline tables of a built-in suite run, read from its CSV results.

    python perf/suite_tables.py examples/results/h100-80gb-hbm3 examples/results/2x-h200

Reads every run directory (manifest.json + results/metrics CSVs, the CSV store's
format) under the given folders and prints the README's tables: optimizers, matmul,
transformer (beside the seed's fp32 figures), attention, generation, all-reduce. Values
are medians of the raw samples; "oom" marks a cell that ran out of memory.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterator
from pathlib import Path

# CS336 (2024) seed figures, fp32, batch 4, context 512: (forward, forward+backward) ms.
SEED_MS = {"small": (45.5, 93.2), "medium": (137, 284), "large": (284, 608), "xl": (573, 1191)}

Cases = dict[str, dict[str, float]]


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(line for line in fh if not line.startswith("#"))


def load(folders: list[Path], stat: str = "median") -> tuple[Cases, dict[str, str], list[str]]:
    """Medians (or another summary column of the metrics CSV: `stat="mean"`) per case
    label and metric, statuses per label, and the GPUs seen."""
    medians: Cases = {}
    status: dict[str, str] = {}
    gpus: list[str] = []
    for manifest in sorted(p for f in folders for p in f.rglob("manifest.json")):
        run = manifest.parent
        machine = json.loads(manifest.read_text(encoding="utf-8"))["machine"]
        gpus.append(f"{machine['gpu_count']}x {machine['gpu_name']}")
        for part in sorted(run.glob("results-*.csv")):
            labels = {}
            for r in _rows(part):
                labels[r["result_key"]] = r["case_label"]
                # A case skipped on one machine (all-reduce on one GPU) and measured on
                # another shows the measurement.
                if status.get(r["case_label"]) in (None, "skipped"):
                    status[r["case_label"]] = r["status"]
            for m in _rows(part.with_name(part.name.replace("results-", "metrics-"))):
                if m[stat] and m["result_key"] in labels:
                    medians.setdefault(labels[m["result_key"]], {})[m["name"]] = float(m[stat])
    return medians, status, gpus


def _cell(cases: Cases, status: dict[str, str], label: str, metric: str, scale: float) -> str:
    if status.get(label) not in (None, "ok"):
        return status[label]
    value = cases.get(label, {}).get(metric)
    if value is None:
        return "-"
    value *= scale
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def tables(cases: Cases, status: dict[str, str]) -> str:
    out: list[str] = []

    def table(title: str, head: list[str], rows: list[list[str]]) -> None:
        out.append(f"\n#### {title}\n")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        out.extend("| " + " | ".join(r) + " |" for r in rows)

    def c(label: str, metric: str, scale: float = 1.0) -> str:
        return _cell(cases, status, label, metric, scale)

    opt = "optimizers.step[optimizer={}]"
    table(
        "Optimizers (10 x Linear(2048, 2048), fp16, batch 128)",
        ["optimizer", "train step ms", "optimizer step ms", "state MiB", "peak CUDA MiB"],
        [
            [
                o,
                c(opt.format(o), "train_step", 1e3),
                c(opt.format(o), "optimizer_step", 1e3),
                c(opt.format(o), "state_mem"),
                c(opt.format(o), "peak_cuda_mem"),
            ]
            for o in ("adamw", "adamw8bit", "paged_adamw", "paged_adamw8bit")
        ],
    )
    rows = []
    for shape in ("4096x12288", "5120x15360", "12288x49152"):
        for name, label in (
            ("fp16", f"matmul.dense[dtype=fp16,shape={shape}]"),
            ("bf16", f"matmul.dense[dtype=bf16,shape={shape}]"),
            ("int8 pipeline", f"matmul.int8[shape={shape}]"),
            ("Linear8bitLt t=0", f"matmul.linear8bit[shape={shape},threshold=0.0]"),
            ("Linear8bitLt t=6", f"matmul.linear8bit[shape={shape},threshold=6.0]"),
            ("NF4 Linear4bit", f"matmul.nf4[shape={shape}]"),
        ):
            rel = c(label, "rel_err") if "dense" not in label else ""
            rows.append(
                [
                    shape,
                    name,
                    c(label, "time", 1e3),
                    c(label, "time.tflops"),
                    c(label, "time.peak_pct"),
                    rel,
                ]
            )
    table(
        "Matmul (batch 2 x 512 tokens; TOPS for int8)",
        ["model x hidden", "impl", "ms", "TFLOP/s", "% of peak", "rel. err vs fp16"],
        rows,
    )
    rows = []
    for size in ("small", "medium", "large", "xl", "2.7B"):
        for dtype in ("fp32", "bf16"):
            label = f"transformer.lm[context=512,dtype={dtype},size={size}]"
            fwd = cases.get(label, {}).get("forward")
            fb = cases.get(label, {}).get("forward_backward")
            ratio = f"{(fb - fwd) / fwd:.2f}" if fwd and fb else "-"
            seed = SEED_MS.get(size) if dtype == "fp32" else None
            seed_txt = f"{seed[0]:g} / {seed[1]:g}" if seed else ""
            seed_ratio = f"{(seed[1] - seed[0]) / seed[0]:.2f}" if seed else ""
            rows.append(
                [
                    size,
                    dtype,
                    c(label, "forward", 1e3),
                    c(label, "forward_backward", 1e3),
                    ratio,
                    seed_txt,
                    seed_ratio,
                    c(label, "train_step", 1e3),
                    c(label, "train_step.peak_pct"),
                    c(label, "peak_cuda_mem", 1 / 1024),
                ]
            )
    table(
        "Transformer LM (batch 4, context 512)",
        [
            "size",
            "dtype",
            "fwd ms",
            "fwd+bwd ms",
            "bwd/fwd",
            "seed fwd / fwd+bwd ms",
            "seed bwd/fwd",
            "AdamW step ms",
            "step MFU %",
            "peak GiB",
        ],
        rows,
    )
    rows = []
    for d in (16, 32, 64, 128):
        for seq in (256, 1024, 4096, 8192, 16384):
            row = [str(d), str(seq)]
            for impl in ("naive", "sdpa", "compiled"):
                label = f"attention.single_head[d={d},impl={impl},seq={seq}]"
                row.append(f"{c(label, 'forward', 1e3)} / {c(label, 'backward', 1e3)}")
            label = f"attention.single_head[d={d},impl=naive,seq={seq}]"
            row.append(c(label, "memory_before_backward"))
            rows.append(row)
    table(
        "Attention (batch 8, one head, fp32): forward / backward ms",
        ["d", "seq", "naive", "SDPA", "compiled naive", "naive MiB before bwd"],
        rows,
    )
    gen = "generation.decode[mode={}]"
    table(
        "Generation (small decoder, batch 1, 128-token prompt, 128 new tokens)",
        ["mode", "TTFT ms", "mean ms/token", "p95 ms/token", "tokens/s", "compile s"],
        [
            [
                mode,
                c(gen.format(mode), "ttft", 1e3),
                c(gen.format(mode), "next_token", 1e3),
                c(gen.format(mode), "next_token.p95", 1e3),
                c(gen.format(mode), "tokens_per_s"),
                c(gen.format(mode), "compile_time"),
            ]
            for mode in ("eager", "compiled")
        ],
    )
    ar = "allreduce.all_reduce[size={}]"
    table(
        "All-reduce (float32, NCCL, one process per GPU)",
        ["size", "time us", "algbw GB/s", "busbw GB/s"],
        [
            [s, c(ar.format(s), "time", 1e6), c(ar.format(s), "algbw"), c(ar.format(s), "busbw")]
            for s in ("1MB", "10MB", "100MB", "1GB")
        ],
    )
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path)
    args = p.parse_args()
    cases, status, gpus = load(args.folders)
    print("runs on: " + "; ".join(gpus))
    print(tables(cases, status))


if __name__ == "__main__":
    main()
