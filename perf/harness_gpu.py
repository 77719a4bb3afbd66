"""GPU verification of the bench harness (issue 3): fidelity, noise, sampler overhead.

    cd <checkout> && PYTHONPATH=service python perf/harness_gpu.py --out DIR

1. Workers, interleaved A/B: an 8192^3 bf16 matmul bench runs in 10 fresh worker
   processes, sampler off (A) and on at 100 ms (B), alternating, after one discarded
   run that brings the GPU to its working clocks. Noise: the coefficient of variation
   of the 5 A medians (target <= 1%). Overhead: median of B medians / median of A
   medians - 1 (target <= 0.5%). The B runs must read non-zero GPU utilization and power
   from the real NVML backend.
2. Fidelity, in this process afterwards (the orchestrator stays torch-free until then):
   the harness median (CUDA events, L2 flushed before every repeat) against
   `triton.testing.do_bench(..., return_mode="median")`, which also flushes L2 (it zeroes a
   256 MB buffer before every repeat), over 3 interleaved rounds (target within 2%).
   Also printed: the harness median without L2 flush, do_bench's mean, and the wall time
   of one unsynchronised call (what a naive timer would report).

`--cpu` runs the same flow on a CPU with tiny sizes (no triton, no NVML) to debug it.
Prints every figure and writes harness_gpu.csv into --out.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from commitbench.model.records import ResultRecord
from commitbench.runner.launcher import WorkerOptions, run_module, worker_environment
from commitbench.runner.sampling.sampler import DeviceSampler

N = 8192
BUDGET_S = 1.5
MODULE = "harness_gpu_matmul"
BENCH_SOURCE = """
import commitbench as cb
from commitbench.harness.timing import TimingPolicy

# target_rel_ci=0: repeat for the whole budget, so every run takes the same time.
POLICY = TimingPolicy(warmup=10, warmup_s=0.2, budget_s={budget}, target_rel_ci=0.0)


@cb.bench(params={{"n": [{n}]}}, requires={requires}, policy=POLICY)
def matmul(ctx, n):
    import torch

    dtype = torch.bfloat16 if ctx.device == "cuda" else torch.float32
    gen = torch.Generator(device=ctx.device).manual_seed(0)
    a = torch.randn(n, n, device=ctx.device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=ctx.device, dtype=dtype, generator=gen)
    ctx.time("matmul", lambda: a @ b, flops=2 * n**3, dtype=dtype, l2_flush=True)
"""

rows: list[dict[str, Any]] = []


def note(check: str, name: str, value: float | str | None, unit: str = "", **extra: Any) -> None:
    rows.append({"check": check, "name": name, "value": value, "unit": unit, **extra})
    shown = f"{value:.6g}" if isinstance(value, float) else value
    print(f"  {check:10} {name:34} {shown} {unit}", *(f"{k}={v}" for k, v in extra.items()))


def metric(result: ResultRecord, name: str) -> float | None:
    m = next((m for m in result.metrics if m.name == name), None)
    return None if m is None else m.median


def worker_runs(options: WorkerOptions) -> None:
    print("== workers: sampler off (A) / on at 100 ms (B), interleaved", flush=True)
    medians: dict[str, list[float]] = {"A": [], "B": []}
    seen_util: list[float] = []
    seen_power: list[float] = []
    for i, mode in enumerate(["warm", *("AB" * 5)]):
        t0 = time.perf_counter()
        if mode == "B":
            with DeviceSampler.default(interval=0.1) as sampler:
                runs = list(run_module(MODULE, options, observer=sampler))
                results = [sampler.annotate(r) for r in runs]
        else:
            results = [r.result for r in run_module(MODULE, options)]
        (result,) = results
        if result.status != "ok":
            raise SystemExit(f"bench {result.status}: {result.error}")
        med = metric(result, "matmul")
        assert med is not None
        n = next(m.n for m in result.metrics if m.name == "matmul")
        extra = ""
        if mode == "B":
            util = next((m for m in result.metrics if m.name == "gpu_util"), None)
            power = next((m for m in result.metrics if m.name == "gpu_power"), None)
            if util is not None and util.max is not None:
                seen_util.append(util.max)
            if power is not None and power.mean is not None:
                seen_power.append(power.mean)
            extra = (
                f" gpu_util mean/max={util and util.mean}/{util and util.max}"
                f" power={power and power.mean} W energy_per_iter="
                f"{metric(result, 'energy_per_iter')} J ticks={len(result.device_samples)}"
            )
        print(
            f"  run {i:2} {mode:4} median {med * 1e3:.4f} ms n={n} "
            f"tflops={metric(result, 'matmul.tflops')} peak%={metric(result, 'matmul.peak_pct')}"
            f"{extra} ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        if mode in medians:
            medians[mode].append(med)
    for mode in "AB":
        values = medians[mode]
        cv = statistics.stdev(values) / statistics.fmean(values)
        note("noise", f"cv_of_medians_{mode}", 100 * cv, "%", runs=len(values), target="<=1%")
    a, b = statistics.median(medians["A"]), statistics.median(medians["B"])
    note("noise", "median_of_medians_A", a * 1e3, "ms")
    note("overhead", "median_of_medians_B", b * 1e3, "ms")
    note("overhead", "sampler_slowdown", 100 * (b / a - 1), "%", target="<=0.5%")
    note("nvml", "gpu_util_max_min_over_runs", min(seen_util) if seen_util else None, "%")
    note("nvml", "gpu_power_mean_min_over_runs", min(seen_power) if seen_power else None, "W")


def fidelity(cpu: bool) -> None:
    import torch

    from commitbench.harness.context import Context
    from commitbench.harness.timing import CpuTimer, CudaTimer, TimingPolicy, measure
    from commitbench.model.cases import CaseKey

    print("== fidelity (in process)", flush=True)
    n = 256 if cpu else N
    device, dtype = ("cpu", torch.float32) if cpu else ("cuda", torch.bfloat16)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def fn() -> object:
        return a @ b

    policy = TimingPolicy(warmup=10, warmup_s=0.2, budget_s=BUDGET_S, target_rel_ci=0.0)
    for _ in range(20):
        fn()
    if not cpu:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    unsynced = time.perf_counter() - t0
    if not cpu:
        torch.cuda.synchronize()
    note("fidelity", "unsynchronised_wall_time", unsynced * 1e3, "ms")

    def timer() -> Any:
        return CpuTimer() if cpu else CudaTimer()

    pairs = []
    for rnd in range(3):
        h = measure(fn, policy=policy, timer=timer(), l2_flush=True).stats.median
        h_noflush = measure(fn, policy=policy, timer=timer(), l2_flush=False).stats.median
        if cpu:
            t_med = t_mean = h
        else:
            from triton.testing import do_bench

            t_med = do_bench(fn, warmup=100, rep=1000, return_mode="median") / 1e3
            t_mean = do_bench(fn, warmup=100, rep=1000, return_mode="mean") / 1e3
        pairs.append((h, t_med))
        print(
            f"  round {rnd}: harness(flush) {h * 1e3:.4f} ms, harness(no flush) "
            f"{h_noflush * 1e3:.4f} ms, do_bench median {t_med * 1e3:.4f} ms, "
            f"do_bench mean {t_mean * 1e3:.4f} ms",
            flush=True,
        )
        note("fidelity", f"round{rnd}_harness_median_l2flush", h * 1e3, "ms")
        note("fidelity", f"round{rnd}_harness_median_no_flush", h_noflush * 1e3, "ms")
        note("fidelity", f"round{rnd}_do_bench_median_l2flush", t_med * 1e3, "ms")
        note("fidelity", f"round{rnd}_do_bench_mean_l2flush", t_mean * 1e3, "ms")
    h = statistics.median(p[0] for p in pairs)
    t = statistics.median(p[1] for p in pairs)
    note("fidelity", "harness_vs_do_bench", 100 * (h / t - 1), "%", target="within 2%")

    ctx = Context(CaseKey.of("perf.harness_gpu.matmul", {"n": n}), "full", policy=policy)
    ctx.time("matmul", fn, flops=2 * n**3, dtype=dtype, l2_flush=True)
    for m in ctx.metrics:
        note("context", m.name, m.median, m.unit, **{k: str(v) for k, v in m.properties.items()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu", action="store_true", help="debug run on CPU, tiny sizes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = BENCH_SOURCE.format(
            n=256 if args.cpu else N,
            budget=0.3 if args.cpu else BUDGET_S,
            requires="()" if args.cpu else '("cuda",)',
        )
        (Path(tmp) / f"{MODULE}.py").write_text(source)
        options = WorkerOptions(
            profile="full",
            timeout_s=300,
            device="cpu" if args.cpu else "auto",
            pythonpath=(Path(tmp),),
        )
        env = worker_environment(options)
        print("== environment", env, flush=True)
        for gpu in env.get("gpus") or []:
            note("device", "gpu", gpu["name"], sm_count=gpu["sm_count"])
        note("device", "torch", env.get("torch"))
        note("device", "triton", env.get("triton"))
        worker_runs(options)
    fidelity(args.cpu)
    base = ("check", "name", "value", "unit")
    with (args.out / "harness_gpu.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*base, "details"])
        writer.writeheader()
        for r in rows:
            details = ";".join(f"{k}={v}" for k, v in r.items() if k not in base)
            writer.writerow({**{k: r[k] for k in base}, "details": details})
    print(f"wrote {args.out / 'harness_gpu.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
