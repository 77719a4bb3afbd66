"""Change point detection quality and speed: commitbench against Apache Otava and asv.

Data (seeded, random.Random): 200 series of 200 points per scenario. Every point is
100 * level * (1 + 0.02 * N(0, 1)) (noise CV 2%). The even-numbered series (100 of 200) have
one step: level 1 before index tau, 1 +/- 5% (random sign) from tau on. Scenarios:

- clean: tau uniform in [10, 190] (at least 10 points on each side of the step);
- outliers: as clean, plus each point independently, with probability 2%, times 1.3;
- anywhere: as clean, but tau uniform in [1, 199]: steps at the very ends are included.

Scoring, per scenario and tool:
- true positive: a series with a step at tau and at least one reported change point (first
  index of the new regime) within +/- 5 points of tau; the nearest such point is the match;
- false alarm: every reported change point that is not a match (all of them in a series
  without a step, the others in a series with one); rate per 1,000 points over all 200
  series (40,000 points);
- localisation error: |match - tau| over the true positives: median, and the share <= 1;
- time: seconds for the 200 series, median of --repeat runs, inside one process (imports
  and process start excluded).
Long series: 10,000 points with one 5% step at 5,000 (CV 2%, no outliers): the number of
change points found, and the median seconds of --repeat analyses.

Tools, each with its defaults:
- commitbench: commitbench.analysis.changepoints.detect (p_max 0.001, window 50), once with
  min_effect=0 (the detector alone, like the other tools, which have no effect filter on by
  default) and once with its default min_effect=0.05, which by construction drops about half
  of the true 5% steps (their estimated change falls below 5% as often as above);
- Otava: otava.analysis.compute_change_points(series) of apache-otava 0.8.0 (window 50,
  p 0.001, min magnitude 0), in its own virtual environment;
- asv: asv.step_detect.detect_steps(series) of asv 0.6.6; a change point is the left end of
  every segment but the first.

Otava and asv are not dependencies of commitbench; install them apart and pass their Python:

    python3 -m venv /tmp/otava-venv && /tmp/otava-venv/bin/pip install apache-otava==0.8.0
    python3 -m venv /tmp/asv-venv && /tmp/asv-venv/bin/pip install asv==0.6.6
    .venv/bin/python perf/detection.py --otava /tmp/otava-venv/bin/python \\
        --asv /tmp/asv-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from commitbench.analysis.changepoints import detect

SERIES = 200
POINTS = 200
CV = 0.02
STEP = 0.05
TOLERANCE = 5
LONG = 10_000
SCENARIOS = {
    # name: (tau range, outlier probability)
    "clean": ((10, 190), 0.0),
    "outliers": ((10, 190), 0.02),
    "anywhere": ((1, 199), 0.0),
}

# Runs inside the other tool's environment: reads the series, prints indexes and timings.
WORKER = r"""
import json, statistics, sys, time
tool = sys.argv[1]
if tool == "otava":
    from otava.analysis import compute_change_points
    def find(xs):
        return [int(cp.index) for cp in compute_change_points(xs)[0]]
else:
    from asv.step_detect import detect_steps
    def find(xs):
        return [int(step[0]) for step in detect_steps(xs)[1:]]
job = json.load(sys.stdin)
out = {"scenarios": {}, "long": None}
for name, series in job["scenarios"].items():
    seconds = []
    for _ in range(job["repeat"]):
        t0 = time.perf_counter()
        found = [find(xs) for xs in series]
        seconds.append(time.perf_counter() - t0)
    out["scenarios"][name] = {"found": found, "seconds": statistics.median(seconds)}
seconds = []
for _ in range(job["repeat"]):
    t0 = time.perf_counter()
    found = find(job["long"])
    seconds.append(time.perf_counter() - t0)
out["long"] = {"found": found, "seconds": statistics.median(seconds)}
print(json.dumps(out))
"""


def make_series(seed: int, n: int, tau: int | None, outliers: float) -> list[float]:
    rng = random.Random(seed)
    step = 1.0 + rng.choice((1.0, -1.0)) * STEP
    values = []
    for i in range(n):
        level = step if tau is not None and i >= tau else 1.0
        x = 100.0 * level * (1.0 + CV * rng.gauss(0.0, 1.0))
        if rng.random() < outliers:
            x *= 1.3
        values.append(x)
    return values


def scenario(name: str) -> tuple[list[list[float]], list[int | None]]:
    (lo, hi), outliers = SCENARIOS[name]
    rng = random.Random(f"taus-{name}")
    taus: list[int | None] = [rng.randint(lo, hi) if i % 2 == 0 else None for i in range(SERIES)]
    series = [make_series(hash_seed(name, i), POINTS, tau, outliers) for i, tau in enumerate(taus)]
    return series, taus


def hash_seed(name: str, i: int) -> int:
    # Same noise in every scenario for series i (str hashes are salted per process).
    return 1_000 * i + sum(map(ord, name))


def score(found: list[list[int]], taus: Sequence[int | None]) -> dict[str, float]:
    hits, alarms, errors = 0, 0, []
    for indexes, tau in zip(found, taus, strict=True):
        rest = list(indexes)
        if tau is not None:
            near = [i for i in rest if abs(i - tau) <= TOLERANCE]
            if near:
                match = min(near, key=lambda i: abs(i - tau))
                rest.remove(match)
                hits += 1
                errors.append(abs(match - tau))
        alarms += len(rest)
    steps = sum(tau is not None for tau in taus)
    return {
        "tpr": hits / steps,
        "fa": alarms / (len(taus) * POINTS / 1000),
        "err": statistics.median(errors) if errors else float("nan"),
        "within1": sum(e <= 1 for e in errors) / len(errors) if errors else float("nan"),
    }


def run_ours(
    finder: Callable[[list[float]], list[int]], job: dict[str, object], repeat: int
) -> dict[str, object]:
    out: dict[str, object] = {}
    scenarios: dict[str, dict[str, object]] = {}
    series_by_name = job["scenarios"]
    assert isinstance(series_by_name, dict)
    for name, series in series_by_name.items():
        seconds = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            found = [finder(xs) for xs in series]
            seconds.append(time.perf_counter() - t0)
        scenarios[name] = {"found": found, "seconds": statistics.median(seconds)}
    out["scenarios"] = scenarios
    long = job["long"]
    assert isinstance(long, list)
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        found = finder(long)
        seconds.append(time.perf_counter() - t0)
    out["long"] = {"found": found, "seconds": statistics.median(seconds)}
    return out


def run_other(python: str, tool: str, job: dict[str, object], repeat: int) -> dict[str, object]:
    proc = subprocess.run(
        [python, "-c", WORKER, tool],
        input=json.dumps({**job, "repeat": repeat}),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def version(python: str, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--otava", help="Python of a virtual environment with apache-otava")
    parser.add_argument("--asv", help="Python of a virtual environment with asv")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per tool (median)")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()

    data = {name: scenario(name) for name in SCENARIOS}
    long = make_series(7, LONG, LONG // 2, 0.0)
    job: dict[str, object] = {
        "scenarios": {name: series for name, (series, _) in data.items()},
        "long": long,
    }
    tools: list[tuple[str, dict[str, object]]] = [
        (
            "commitbench min_effect=0",
            run_ours(lambda xs: [c.index for c in detect(xs, min_effect=0.0)], job, args.repeat),
        ),
        (
            "commitbench min_effect=0.05",
            run_ours(lambda xs: [c.index for c in detect(xs)], job, args.repeat),
        ),
    ]
    if args.otava:
        name = f"otava {version(args.otava, 'apache-otava')}"
        tools.append((name, run_other(args.otava, "otava", job, args.repeat)))
    if args.asv:
        name = f"asv {version(args.asv, 'asv')}"
        tools.append((name, run_other(args.asv, "asv", job, args.repeat)))

    lines = [
        f"{SERIES} series x {POINTS} points per scenario, CV {CV:.0%}, one {STEP:.0%} step in "
        f"half; match within +/-{TOLERANCE} points; time: median of {args.repeat}",
        f"{'scenario':<9} {'tool':<28} {'TPR':>5} {'FA/1000':>8} {'med err':>8} "
        f"{'err<=1':>7} {'time s':>7}",
    ]
    for name, (_, taus) in data.items():
        for tool, result in tools:
            per = result["scenarios"]
            assert isinstance(per, dict)
            s = score(per[name]["found"], taus)
            lines.append(
                f"{name:<9} {tool:<28} {s['tpr']:>5.2f} {s['fa']:>8.2f} {s['err']:>8.1f} "
                f"{s['within1']:>7.2f} {per[name]['seconds']:>7.3f}"
            )
    lines.append(f"long series: {LONG} points, one step at {LONG // 2}")
    for tool, result in tools:
        found = result["long"]
        assert isinstance(found, dict)
        lines.append(
            f"          {tool:<28} {len(found['found']):>3} change points "
            f"(first: {found['found'][:3]}), {found['seconds']:.3f} s"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        command = " ".join(["$ .venv/bin/python", *sys.argv])
        args.out.write_text(f"{command}\n{text}\n")


if __name__ == "__main__":
    main()
