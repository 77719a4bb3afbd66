"""Where the launch-bound case's spread between processes comes from (issue 13).

Not a test: measures perf/gate_quality.py's GPU workloads at one commit in N fresh
worker processes (one process per round, as `check` does) and prints, per process, the
median time of each workload next to the process's calibration at start and end and
the one timed around the case (harness/calibration.py), then the correlation of each
workload's log time with each log calibration. A workload whose time follows the
calibration (r near 1) is what the two-level model's covariate adjustment can correct;
one that does not varies for another reason.

    python3 perf/launch_state.py --processes 12 [--budget 0.3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
from pathlib import Path

from commitbench.cli.progress import Quiet
from commitbench.model import state
from commitbench.model.stats import Stats
from commitbench.runner.lab import RunnerLab
from commitbench.runner.options import RunOptions
from commitbench.runner.runner import Runner
from commitbench.runner.vcs import RevSpec
from commitbench.store.csv import CsvStore
from gate_quality import build_repo


def correlation(xs: list[float], ys: list[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=12)
    parser.add_argument("--budget", type=float, default=0.3)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="launch-state-") as tmp:
        root = Path(tmp)
        shas = build_repo(root, args.device, args.budget)
        store = CsvStore(root / "results")
        options = RunOptions(
            repo=root / "repo", revs=RevSpec((shas[0],)), benches="benches", trigger="ci"
        )
        lab = RunnerLab(Runner(options, store, spool=None, events=Quiet()), store)
        for k in range(args.processes):
            lab.measure(shas[0], again=k > 0, processes=1)
            print(f"process {k + 1} of {args.processes}", file=sys.stderr, flush=True)
        points = lab.recorded([shas[0]])
    rows: dict[tuple[str, object], dict[str, float]] = {}
    for p in points:
        if p.metric == "time":
            rows.setdefault((p.case, p.run_id), {})["time"] = Stats.of(p.samples).median * 1e3
        elif p.metric in (state.CALIBRATION_START, state.CALIBRATION_END, state.CALIBRATION_CASE):
            rows.setdefault((p.case, p.run_id), {})[p.metric] = p.samples[0]
    for case in sorted({c for c, _ in rows}):
        mine = [v for (c, _), v in rows.items() if c == case and len(v) == 4]
        print(f"\n{case}: {len(mine)} processes")
        print(f"{'time ms':>10}{'cal start':>11}{'cal end':>10}{'cal case':>10}")
        for v in mine:
            start, end = v[state.CALIBRATION_START], v[state.CALIBRATION_END]
            around = v[state.CALIBRATION_CASE]
            print(f"{v['time']:>10.3f}{start:>11.3f}{end:>10.3f}{around:>10.3f}")
        times = [math.log(v["time"]) for v in mine]
        worker = [
            math.log((v[state.CALIBRATION_START] + v[state.CALIBRATION_END]) / 2) for v in mine
        ]
        case_cal = [math.log(v[state.CALIBRATION_CASE]) for v in mine]
        spread = math.expm1(statistics.stdev(times)) * 100 if len(times) > 1 else math.nan
        print(
            f"between-process spread of time {spread:.1f}%; correlation of log time with log "
            f"calibration: worker start/end r = {correlation(worker, times):.2f}, around the "
            f"case r = {correlation(case_cal, times):.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
