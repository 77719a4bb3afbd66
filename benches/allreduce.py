"""All-reduce bandwidth across the GPUs of one machine (NCCL, launched with torchrun).

The seed workload is nccl-tests' all_reduce_perf at 1 MB, 10 MB, 100 MB and 1 GB of
float32 (sizes in decimal bytes, as nccl-tests prints them), one process per GPU. Each
case starts `torchrun --standalone --nproc-per-node <GPUs>` on benches/_allreduce_rank.py,
which checks the sum once, then times `inner` back-to-back in-place all-reduces per
sample (see that file); this worker records the samples:

- `time`: seconds per all-reduce (the slowest rank's, per sample).
- `algbw` = S / t and `busbw` = S / t * 2(n-1)/n, in GB/s (1e9), n the number of ranks.
  The bus bandwidth factor is nccl-tests' for all-reduce (doc/PERFORMANCE.md): a ring
  all-reduce moves 2(n-1)/n of the data over each link, so busbw is comparable with the
  link's bandwidth whatever n is.

The full profile needs at least 2 GPUs and skips with the reason otherwise. The smoke
profile runs the same launch and measurement with the gloo backend across 2 CPU
processes, sizes divided by 1024, so CI exercises both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import commitbench as cb

SIZES = {"1MB": 10**6, "10MB": 10**7, "100MB": 10**8, "1GB": 10**9}
RANK_SCRIPT = Path(__file__).with_name("_allreduce_rank.py")
LAUNCH_TIMEOUT_S = 300


@cb.bench(params={"size": list(SIZES)})
def all_reduce(ctx: cb.Context, size: str) -> None:
    if ctx.profile == "full":
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus < 2:
            ctx.skip(f"all-reduce across GPUs needs at least 2 GPUs, found {gpus}")
        backend, ranks, nbytes, inner, samples = "nccl", gpus, SIZES[size], 20, 20
    else:
        backend, ranks, nbytes, inner, samples = "gloo", 2, SIZES[size] // 1024, 5, 5
    ctx.note(bytes=nbytes, ranks=ranks)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={ranks}", str(RANK_SCRIPT), "--backend", backend,
            "--bytes", str(nbytes), "--inner", str(inner), "--samples", str(samples),
            "--out", str(out),
        ]  # fmt: skip
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"torchrun exited with {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}"
            )
        result = json.loads(out.read_text(encoding="utf-8"))

    times = [float(t) for t in result["samples_s"]]
    n = int(result["world_size"])
    props: dict[str, Any] = {"backend": backend, "world_size": n, "bytes": nbytes, "inner": inner}
    ctx.record("time", times, "s", **props)
    algbw = [nbytes / t / 1e9 for t in times]
    ctx.record("algbw", algbw, "GB/s", better="higher", **props)
    busbw = [b * 2 * (n - 1) / n for b in algbw]
    ctx.record("busbw", busbw, "GB/s", better="higher", **props)
