"""How long a window NVML's total-energy counter needs (issue 13, item 8). GPU only.

    cd <checkout> && python perf/energy_window.py [--gpu 0] [--n 8192] [--out DIR]

1. Step period: a bf16 matmul loop keeps the GPU busy while this process reads
   nvmlDeviceGetTotalEnergyConsumption as fast as it can for 3 s; each change of the
   value is a step. Printed: the median, min and max time between steps and the
   millijoules per step (and, for scale, how often nvmlDeviceGetPowerUsage changes).
2. Windows: the same loop for windows of 0.5, 1, 2 and 5 s, each repeated (8, 8, 6, 4
   times), the device synchronised at both ends, the counter read there: energy per
   iteration = counter delta / iterations. Printed per window length: the median in J,
   the spread (max - min) / median and the coefficient of variation, in %.

runner/sampling/energy.py's MIN_COUNTER_WINDOW_S is set from part 2: the shortest
window whose spread is within a few percent. Writes energy_window.csv into --out.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
import time
from pathlib import Path
from typing import Any

WINDOWS = ((0.5, 8), (1.0, 8), (2.0, 6), (5.0, 4))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gpu", type=int, default=0)
    p.add_argument("--n", type=int, default=8192, help="matmul size (bf16)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    import pynvml
    import torch

    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(args.gpu)
    name = pynvml.nvmlDeviceGetName(h)
    torch.cuda.set_device(args.gpu)
    a = torch.randn(args.n, args.n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(args.n, args.n, device="cuda", dtype=torch.bfloat16)

    def work(k: int) -> None:
        for _ in range(k):
            a @ b

    # Warm up to working clocks and temperature.
    t_end = time.perf_counter() + 3.0
    while time.perf_counter() < t_end:
        work(10)
        torch.cuda.synchronize()

    # 1. Step period, under load.
    energy_steps: list[tuple[float, int]] = []
    power_changes: list[float] = []
    last_e = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
    last_p = pynvml.nvmlDeviceGetPowerUsage(h)
    t_end = time.perf_counter() + 3.0
    reads = 0
    while time.perf_counter() < t_end:
        work(2)  # queued; the reads below run while the device works
        for _ in range(50):
            now = time.perf_counter()
            e = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
            pw = pynvml.nvmlDeviceGetPowerUsage(h)
            reads += 1
            if e != last_e:
                energy_steps.append((now, e - last_e))
                last_e = e
            if pw != last_p:
                power_changes.append(now)
                last_p = pw
        torch.cuda.synchronize()
    gaps = [t1 - t0 for (t0, _), (t1, _) in itertools.pairwise(energy_steps)]
    pgaps = [t1 - t0 for t0, t1 in itertools.pairwise(power_changes)]
    print(f"GPU {args.gpu}: {name}; {reads} counter reads in 3 s under a {args.n}^3 bf16 loop")
    if gaps:
        print(
            f"energy counter step period: median {statistics.median(gaps) * 1e3:.1f} ms "
            f"(min {min(gaps) * 1e3:.1f}, max {max(gaps) * 1e3:.1f}); "
            f"median step {statistics.median(s for _, s in energy_steps):.0f} mJ"
        )
    if pgaps:
        print(f"power reading change period: median {statistics.median(pgaps) * 1e3:.1f} ms")

    # 2. Energy per iteration over windows.
    rows: list[dict[str, Any]] = []
    print("window_s  repeats  median_J/iter  spread_%  cv_%")
    for window, repeats in WINDOWS:
        values = []
        for _ in range(repeats):
            torch.cuda.synchronize()
            e0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
            t0 = time.perf_counter()
            iters = 0
            while time.perf_counter() - t0 < window:
                work(5)
                iters += 5
                torch.cuda.synchronize()
            e1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
            values.append((e1 - e0) / 1000.0 / iters)
        mid = statistics.median(values)
        spread = 100.0 * (max(values) - min(values)) / mid
        cv = 100.0 * statistics.stdev(values) / statistics.fmean(values)
        print(f"{window:8.1f}  {repeats:7d}  {mid:13.4f}  {spread:8.2f}  {cv:5.2f}")
        rows.append(
            {
                "gpu": name,
                "window_s": window,
                "repeats": repeats,
                "median_j_per_iter": mid,
                "spread_pct": spread,
                "cv_pct": cv,
                "values": " ".join(f"{v:.5f}" for v in values),
                "step_period_ms": statistics.median(gaps) * 1e3 if gaps else None,
            }
        )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        with (args.out / "energy_window.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    pynvml.nvmlShutdown()


if __name__ == "__main__":
    main()
