"""What a re-run with nothing to do costs, before and after `run` asks the store first.

A throwaway repository gets COMMITS commits, each with two bench modules that import
torch (as real ones do). Each commitbench version measures them once into its own CSV
directory, then runs the same command again, REPEATS times, with nothing left to do:

- before (the commit named by --baseline, by default e97b7a4, the tree before issue
  11's change): every commit of a re-run paid a worktree, the --setup command, an
  environment probe (a torch import) and a worker per module that found nothing to run;
- after (this checkout): the store says the same selection was measured completely,
  so the re-run costs no worktree, no setup and no worker. Also timed: a re-run with
  another --filter whose cases are all recorded (one worker lists the modules of each
  commit; no setup, no probe).

The setup command is `true`, the cheapest there is: with a real one (`pip install -e .`)
the difference grows by its time per commit. Both versions run in this one invocation,
on the same machine, interleaved, and the script prints the ratios. The baseline runs
in a virtual environment of its own that sees this one's packages but imports
commitbench from `git archive` of the baseline commit:

    .venv/bin/python perf/rerun.py [--baseline REV] [--commits 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODULE = """\
import torch

import commitbench as cb
import model


@cb.bench(params={{"n": [32, 64]}})
def {name}(ctx, n):
    a = torch.randn(n, n)
    ctx.time("time", lambda: a @ a * model.SCALE, warmup=1, repeat=5)
"""


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def measured_repo(path: Path, commits: int) -> None:
    path.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=path)
    git("config", "user.name", "perf", cwd=path)
    git("config", "user.email", "perf@example.com", cwd=path)
    benches = path / "benches"
    benches.mkdir()
    for name in ("bench_a", "bench_b"):
        (benches / f"{name}.py").write_text(MODULE.format(name=name.split("_")[1]))
    for i in range(commits):
        (path / "model.py").write_text(f"SCALE = {i + 1}\n")
        git("add", "-A", cwd=path)
        git("commit", "-q", "-m", f"commit {i}", cwd=path)


def baseline_python(rev: str, where: Path) -> Path:
    """An interpreter that imports commitbench from the tree of `rev` and everything
    else from this virtual environment (whose editable install points here)."""
    tree = where / "baseline"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev, "service"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    venv = where / "baseline-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # Not a site directory: this venv's .pth files (the editable finder) are not read.
    ours = sysconfig.get_path("purelib")
    (site / "baseline.pth").write_text(f"{tree / 'service'}\n{ours}\n")
    return venv / "bin" / "python"


def commitbench(python: Path, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMITBENCH_")}
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(python), "-m", "commitbench", "run", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{python} commitbench run {' '.join(args)}: {done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default="e97b7a4", help="commitbench revision before")
    p.add_argument("--commits", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    where = Path(tempfile.mkdtemp(prefix="cb-perf-rerun-"))
    try:
        repo = where / "repo"
        measured_repo(repo, args.commits)
        pythons = {"before": baseline_python(args.baseline, where), "after": Path(sys.executable)}
        common = (
            *("--repo", str(repo), "--benches", "benches", "--setup", "true"),
            *("--max-count", str(args.commits), "main"),
        )
        first: dict[str, float] = {}
        forced: dict[str, float] = {}
        for name, python in pythons.items():
            first[name] = commitbench(python, *common, "--results", str(where / name))
        for name, python in pythons.items():  # measuring everything again: the same work
            forced[name] = commitbench(
                python, *common, "--results", str(where / f"{name}-forced"), "--force"
            )
        times: dict[str, list[float]] = {"before": [], "after": [], "after, another filter": []}
        for _ in range(args.repeats):  # interleaved, so load drifts hit both alike
            for name, python in pythons.items():
                times[name].append(commitbench(python, *common, "--results", str(where / name)))
            times["after, another filter"].append(
                commitbench(
                    pythons["after"], *common, "--results", str(where / "after"), "--filter", "n=64"
                )
            )
        print(
            f"{args.commits} commits x 2 bench modules (torch), --setup true; "
            f"baseline {args.baseline}; median of {args.repeats}, seconds"
        )
        print(f"{'':24} {'first run':>10} {'--force':>8} {'no-op re-run':>13} {'per commit':>11}")
        for name in ("before", "after", "after, another filter"):
            median = statistics.median(times[name])
            once = (
                f"{first[name]:10.2f} {forced[name]:8.2f}" if name in first else f"{'':10} {'':8}"
            )
            print(f"{name:24} {once} {median:13.2f} {median / args.commits:11.3f}")
        before = statistics.median(times["before"])
        for name in ("after", "after, another filter"):
            print(f"ratio {name} / before: {statistics.median(times[name]) / before:.3f}")
    finally:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
