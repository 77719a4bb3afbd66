"""One rank of the `allreduce` bench; started by torchrun, never imported by a worker.

    python -m torch.distributed.run --standalone --nproc-per-node N \
        benches/_allreduce_rank.py --backend nccl --bytes 1000000 --out result.json

Checks one all-reduce for the right sum, then takes `--samples` samples, each the time of
`--inner` back-to-back all-reduces (float32 SUM, in place) divided by `--inner`, after a
barrier, as nccl-tests does; CUDA events with NCCL, perf_counter with gloo. A sample is
the slowest rank's, since the collective is done only when every rank is. Rank 0 writes
the samples (seconds per all-reduce) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.distributed as dist


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=("nccl", "gloo"), required=True)
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--inner", type=int, default=20)
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    cuda = args.backend == "nccl"
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(args.backend, device_id=device if cuda else None)
    rank, world = dist.get_rank(), dist.get_world_size()
    n = args.bytes // 4

    check = torch.full((n,), float(rank + 1), device=device)
    dist.all_reduce(check)
    expected = world * (world + 1) / 2
    if not bool((check == expected).all()):
        raise RuntimeError(f"rank {rank}: all-reduce sum is wrong (expected {expected})")
    del check

    x = torch.zeros(n, device=device)  # zeros stay zeros: no overflow however often summed
    for _ in range(args.warmup):
        dist.all_reduce(x)
    samples = []
    for _ in range(args.samples):
        dist.barrier()
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            for _ in range(args.inner):
                dist.all_reduce(x)
            end.record()
            torch.cuda.synchronize()
            samples.append(start.elapsed_time(end) / 1e3 / args.inner)
        else:
            t0 = time.perf_counter()
            for _ in range(args.inner):
                dist.all_reduce(x)
            samples.append((time.perf_counter() - t0) / args.inner)

    slowest = torch.tensor(samples, dtype=torch.float64, device=device)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    if rank == 0:
        result = {
            "samples_s": slowest.tolist(),
            "world_size": world,
            "backend": args.backend,
            "bytes": args.bytes,
            "inner": args.inner,
            "device": torch.cuda.get_device_name() if cuda else "cpu",
        }
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
