"""The seed's findings as data, read back from results recorded with `run --trace`:
GEMM share of a forward pass and of a training step (per timed function of the
transformer cases), the peak memory of a training step in fp32 and under bf16 autocast,
and for naive attention the softmax-vs-matmul time ratio against their FLOP ratio.

    python perf/profile_figures.py --repo REPO --results DIR SHA [--attention-case ID]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from commitbench.model import profile as p
from commitbench.runner.profiles import profiles_at
from commitbench.runner.vcs import Repository
from commitbench.store.csv import CsvStore

TRANSFORMER = "transformer.lm[context=512,dtype={dtype},size=small]"
PARTS = ("forward", "forward_backward", "train_step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("sha")
    parser.add_argument("--attention-case", default=None, help="a naive-attention case id")
    parser.add_argument("--seq", type=int, default=4096)
    parser.add_argument("--d", type=int, default=64)
    args = parser.parse_args()
    repo = Repository(args.repo)
    sha = repo.sha(args.sha)
    store = CsvStore(args.results)
    print(f"commit {sha[:12]}, results {args.results}")
    for dtype in ("fp32", "bf16"):
        case = TRANSFORMER.format(dtype=dtype)
        for part in PARTS:
            found = profiles_at(store, repo.id, sha, case, part)
            if not found:
                print(f"{case} {part}: no profile")
                continue
            data = found[-1].data
            shares = data.table.shares()
            print(
                f"{case} {part:16} GEMM {shares['gemm'] * 100:5.1f}%  attention "
                f"{shares['attention'] * 100:5.1f}%  softmax/reduction "
                f"{shares['reduction_softmax'] * 100:5.1f}%  elementwise "
                f"{shares['elementwise'] * 100:5.1f}%  norm {shares['normalisation'] * 100:5.1f}%"
                f"  launches/iter {data.values.get(p.LAUNCHES_PER_ITER, float('nan')):.0f}"
                f"  host/device {data.values.get(p.HOST_OVER_DEVICE, float('nan')):.2f}"
            )
        whole = profiles_at(store, repo.id, sha, case)
        if whole:
            v = whole[-1].data.values
            print(
                f"{case} peak allocated {v.get(p.PEAK_ALLOCATED, float('nan')):.0f} MiB, "
                f"reserved {v.get(p.PEAK_RESERVED, float('nan')):.0f} MiB (a full step)"
            )
    if args.attention_case:
        found = profiles_at(store, repo.id, sha, args.attention_case, "forward")
        if not found:
            print(f"{args.attention_case}: no profile")
            return
        table = found[-1].data.table
        gemm = sum(r.time_s for r in table.rows if r.category == "gemm")
        soft = sum(r.time_s for r in table.rows if r.category == "reduction_softmax")
        s, d = args.seq, args.d
        # Per (batch, head): QK^T and PV are 2*S*S*d each; softmax about 5 per element
        # (max, subtract, exp, sum, divide).
        flop_ratio = (5 * s * s) / (4 * s * s * d)
        print(
            f"{args.attention_case} forward: softmax/matmul time {soft / gemm:.2f} "
            f"vs FLOPs {flop_ratio:.3f} (GEMM {gemm * 1e3:.3f} ms, softmax {soft * 1e3:.3f} ms)"
        )


if __name__ == "__main__":
    main()
