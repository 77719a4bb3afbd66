"""The machine state and `doctor` on a real GPU (issue 13, items 5, 6, 8).

    cd <checkout> && PYTHONPATH=service python perf/state_gpu.py [--seconds 20] [--budget 3]

1. Three fresh worker processes each run the doctor's loops (harness/doctorloops.py:
   CPU loop, 100 tiny launches, a 4096^2 bf16 matmul) for `--budget` seconds each, under
   the real sampler (NVML + psutil), as `commitbench run` does. Printed per process and
   loop: the median, the calibration at the worker's start and end (and where it ran),
   SM clock, throttled share, other GPU processes, wall/CPU, and energy per iteration
   with its source and window.
2. `commitbench doctor`'s diagnosis for `--seconds` (its JSON).
"""

from __future__ import annotations

import argparse
import json
import os

from commitbench.model import state
from commitbench.runner.doctor import BUDGET_ENV, MODULE, diagnose
from commitbench.runner.launcher import WorkerOptions, run_module
from commitbench.runner.sampling.sampler import DeviceSampler
from commitbench.runner.sampling.state import with_calibration

SHOWN = (
    state.CALIBRATION_START,
    state.CALIBRATION_END,
    state.SM_CLOCK,
    state.THROTTLED,
    state.OTHER_GPU_PROCESSES,
    state.WALL_PER_CPU,
    state.LOAD,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--budget", type=float, default=3.0)
    p.add_argument("--processes", type=int, default=3)
    args = p.parse_args()
    env = {**os.environ, BUDGET_ENV: repr(args.budget)}
    options = WorkerOptions(profile="full", timeout_s=300, env=env, pass_env=(BUDGET_ENV,))
    with DeviceSampler.default() as sampler:
        print("run state:", sampler.run_state())
        for i in range(args.processes):
            # The worker's end calibration comes after its last result: collect first.
            for run in list(run_module(MODULE, options, observer=sampler)):
                r = with_calibration(sampler.annotate(run), run.process)
                got = {m.name: m for m in r.metrics}
                timing = next((m for m in r.metrics if m.unit == "s"), None)
                line = [f"process {i} {r.case.label} {r.status}"]
                if timing is not None and timing.median is not None:
                    line.append(f"median {timing.median * 1e3:.4f} ms (n={timing.n})")
                for name in SHOWN:
                    if name in got and got[name].median is not None:
                        line.append(f"{name.removeprefix('state.')}={got[name].median:.4g}")
                if state.CALIBRATION_START in got:
                    line.append(f"calibrated on {got[state.CALIBRATION_START].properties}")
                if "energy_per_iter" in got:
                    e = got["energy_per_iter"]
                    line.append(f"energy/iter {e.median:.4g} J {dict(e.properties)}")
                print("; ".join(line), flush=True)
    d = diagnose(seconds=args.seconds, processes=4, progress=print)
    print(json.dumps(d.as_json(), indent=1))


if __name__ == "__main__":
    main()
