"""Where the launch-bound case's spread between processes comes from (issue 13).

Not a test: measures perf/gate_quality.py's GPU workloads at one commit in N fresh
worker processes (one process per round, as `check` does) and prints, per process, the
median time of each workload next to the process's calibration at start and end and
the one timed around the case (harness/calibration.py), then the correlation of each
workload's log time with each log calibration. A workload whose time follows the
calibration (r near 1) is what the two-level model's covariate adjustment can correct;
one that does not varies for another reason.

Each row also names the CPU the process ended its case on (harness/placement.py). With
`--pin`, process k is pinned to the k-th CPU of those allowed (round robin, `--affinity`
of `run`), and the summary puts the spread within a CPU next to the spread between
processes: when the time follows the CPU, pinning (--affinity) takes the spread out.

    python3 perf/launch_state.py --processes 12 [--budget 0.3] [--pin]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from commitbench.cli.progress import Quiet
from commitbench.model import state
from commitbench.model.stats import Stats
from commitbench.runner.lab import RunnerLab
from commitbench.runner.options import RunOptions
from commitbench.runner.runner import Runner
from commitbench.runner.vcs import RevSpec
from commitbench.store.csv import CsvStore, find_runs, read_run
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
    parser.add_argument("--pin", action="store_true", help="pin process k to CPU k (mod n)")
    args = parser.parse_args()
    allowed = sorted(os.sched_getaffinity(0))
    rows: dict[tuple[str, object], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="launch-state-") as tmp:
        root = Path(tmp)
        shas = build_repo(root, args.device, args.budget)
        store = CsvStore(root / "results")
        for k in range(args.processes):
            pinned = frozenset({allowed[k % len(allowed)]}) if args.pin else None
            options = RunOptions(
                repo=root / "repo",
                revs=RevSpec((shas[0],)),
                benches="benches",
                trigger="ci",
                affinity=pinned,
            )
            lab = RunnerLab(Runner(options, store, spool=None, events=Quiet()), store)
            lab.measure(shas[0], again=k > 0, processes=1)
            print(f"process {k + 1} of {args.processes}", file=sys.stderr, flush=True)
        for folder in find_runs(root / "results"):
            data = read_run(folder)
            for r in data.results:
                row = rows.setdefault((r.case.label, data.header.run.id), {})
                for m in r.metrics:
                    if m.name == "time":
                        row["time"] = Stats.of(m.samples).median * 1e3
                    elif m.name in (state.CALIBRATION_START, state.CALIBRATION_END):
                        row[m.name] = m.samples[0]
                    elif m.name == state.CALIBRATION_CASE:
                        row[m.name] = m.samples[0]
                        row["cpu"] = m.properties.get("cpu")
    for case in sorted({c for c, _ in rows}):
        mine = [v for (c, _), v in rows.items() if c == case and len(v) == 5]
        print(f"\n{case}: {len(mine)} processes{' (pinned round robin)' if args.pin else ''}")
        print(f"{'time ms':>10}{'cal start':>11}{'cal end':>10}{'cal case':>10}{'cpu':>5}")
        for v in mine:
            start, end = v[state.CALIBRATION_START], v[state.CALIBRATION_END]
            around = v[state.CALIBRATION_CASE]
            print(f"{v['time']:>10.3f}{start:>11.3f}{end:>10.3f}{around:>10.3f}{v['cpu']!s:>5}")
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
        print(placement_line(mine))
    return 0


def placement_line(rows: list[dict[str, Any]]) -> str:
    """How much of the spread between processes the CPU they ran on explains: the pooled
    standard deviation of log time within a CPU (CPUs with two processes or more) next to
    the overall one."""
    by_cpu: dict[object, list[float]] = {}
    for v in rows:
        by_cpu.setdefault(v["cpu"], []).append(math.log(v["time"]))
    groups = [g for g in by_cpu.values() if len(g) > 1]
    if not groups or len(rows) < 3:
        return f"CPUs: {len(by_cpu)}; too few processes per CPU to split the spread"
    within_ss = sum(sum((x - statistics.fmean(g)) ** 2 for x in g) for g in groups)
    within_df = sum(len(g) - 1 for g in groups)
    within = math.expm1(math.sqrt(within_ss / within_df)) * 100
    overall = math.expm1(statistics.stdev([math.log(v["time"]) for v in rows])) * 100
    return (
        f"CPUs: {len(by_cpu)}; spread within a CPU {within:.1f}% ({within_df} df) against "
        f"{overall:.1f}% overall"
    )


if __name__ == "__main__":
    sys.exit(main())
