"""What `--trace` costs, on the CPU: capture time per case, the sizes of the gzipped Chrome
traces, and whether the recorded timings move when the profile is taken.

1. Timing with and without --trace: a module of CPU cases (a matmul, a softmax, an MLP
   forward and backward, a layer norm; one thread each) runs in ROUNDS pairs of worker
   processes, one with `--trace 5` and one without, in alternating order (A B, B A, ...).
   Each process gives each case's median `time`; the figure per case is the median over
   rounds of (with / without) - 1. The profile runs after a case's timed loop, so only the
   cases after it in the same process could feel it. Target (issue 14): within 0.5%.
2. Capture time and trace size per case of the built-in suite's transformer cases
   (smoke profile: the small model on the CPU), one worker with --trace.

    .venv/bin/python perf/profile_cost.py [--rounds 6]
    python3 perf/profile_cost.py --device cuda --rounds 8    # on a GPU: part 1 alone

With `--device cuda` part 1 times the same four operations on the GPU (bf16, 4096 wide,
CUDA-event timing) under the full profile, and part 2 is left out (the GPU capture of the
attention cases is in perf/results/profile-h200/).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from commitbench.model import wire

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = """\
import commitbench as cb
import torch


@cb.bench(params={{"op": ["matmul", "softmax", "mlp", "layer_norm"]}}{requires})
def {name}(ctx, op):
    {threads}
    torch.manual_seed(0)
    x = torch.randn({n}, {n}{where})
    w = torch.randn({n}, {n}{where}, requires_grad=op == "mlp")
    if op == "matmul":
        fn = lambda: x @ w
    elif op == "softmax":
        fn = lambda: torch.softmax(x, -1)
    elif op == "mlp":
        def fn():
            (torch.relu(x @ w) @ w).sum().backward()
    else:
        fn = lambda: torch.nn.functional.layer_norm(x, ({n},))
    ctx.time("time", fn, warmup={warmup}, repeat={repeat})
"""
# One thread, 256 wide, on the CPU; bf16 and 4096 wide on a GPU.
MODULE = TEMPLATE.format(
    requires="", name="cpu", threads="torch.set_num_threads(1)", n=256, where="",
    warmup=3, repeat=41,
)  # fmt: skip
CUDA_MODULE = TEMPLATE.format(
    requires=', requires=("cuda",)', name="gpu", threads="pass", n=4096,
    where=', device="cuda", dtype=torch.bfloat16', warmup=10, repeat=101,
)  # fmt: skip


def worker(
    module: str, path: Path, trace_dir: Path | None, case: list[str], profile: str = "smoke"
) -> list[dict[str, Any]]:
    """One worker process; its results (as wire.py sends them)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(ROOT / "service")])}
    cmd = [sys.executable, "-m", "commitbench.worker", module, "--profile", profile]
    for c in case:
        cmd += ["--case", c]
    if trace_dir is not None:
        cmd += ["--trace", "5", "--trace-dir", str(trace_dir)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    out = []
    for line in done.stdout.splitlines():
        event = json.loads(line)
        if event.get("event") == "result":
            out.append(event["result"])
    return out


def _metric(result: dict[str, Any], name: str) -> dict[str, Any] | None:
    for m in result["metrics"]:
        if m["name"] == name:
            return m
    return None


def _timing(result: dict[str, Any]) -> float:
    found = _metric(result, "time")
    if found is None:
        raise SystemExit(f"{result['case']}: {result['status']} {result['error']}")
    return float(found["median"])


def timing_difference(rounds: int, device: str = "cpu") -> None:
    with tempfile.TemporaryDirectory(prefix="profile-cost-") as tmp:
        folder = Path(tmp)
        (folder / "cost_bench.py").write_text(CUDA_MODULE if device == "cuda" else MODULE)
        profile = "full" if device == "cuda" else "smoke"
        ratios: dict[str, list[float]] = {}
        for r in range(rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            medians: dict[bool, dict[str, float]] = {}
            for traced in order:
                trace_dir = folder / f"t{r}" if traced else None
                if trace_dir is not None:
                    trace_dir.mkdir()
                results = worker("cost_bench", folder, trace_dir, [], profile)
                medians[traced] = {
                    wire.case_from_json(res["case"]).label: _timing(res) for res in results
                }
            for case, without in medians[False].items():
                ratios.setdefault(case, []).append(medians[True][case] / without - 1)
        print(
            f"1. timing with --trace vs without, {rounds} interleaved process pairs "
            "(median over pairs of with/without - 1; target within 0.5%)"
        )
        for case, values in ratios.items():
            spread = f"pairs range {min(values) * 100:+.2f}% .. {max(values) * 100:+.2f}%"
            print(f"   {case:40} {statistics.median(values) * 100:+.2f}%   ({spread})")
        every = [v for values in ratios.values() for v in values]
        print(f"   all cases: median {statistics.median(every) * 100:+.2f}%")


def suite_capture() -> None:
    with tempfile.TemporaryDirectory(prefix="profile-cost-") as tmp:
        trace_dir = Path(tmp)
        t0 = time.perf_counter()
        results = worker("transformer", ROOT / "benches", trace_dir, [])
        wall = time.perf_counter() - t0
        print(f"2. built-in transformer cases (smoke, CPU), one worker with --trace: {wall:.1f} s")
        print(f"   {'case':40} {'case s':>8} {'capture s':>10} {'trace KiB':>10} {'rows':>5}")
        for res in results:
            m = _metric(res, "profile.time_per_iter")
            if m is None:
                print(f"   {res['case']['name']}: {res['status']} (no profile)")
                continue
            label = wire.case_from_json(res["case"]).label
            stem = hashlib.sha256(label.encode()).hexdigest()[:32]
            trace = trace_dir / f"{stem}.trace.json.gz"
            size = trace.stat().st_size / 1024 if trace.exists() else float("nan")
            rows = len(m["properties"]["table"]["rows"])
            print(
                f"   {label:40} {res['duration_s']:8.2f} {m['properties']['capture_s']:10.2f} "
                f"{size:10.1f} {rows:5d}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    print(f"$ perf/profile_cost.py --rounds {args.rounds} --device {args.device}")
    if args.device == "cuda":
        timing_difference(args.rounds, "cuda")
        return
    print(f"   ({os.cpu_count()} cores, shared with other jobs: the machine is noisy)")
    timing_difference(args.rounds)
    suite_capture()


if __name__ == "__main__":
    main()
