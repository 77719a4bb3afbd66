"""CSV read benchmark: `compare` and `report` for one pair of commits in a CSV results
directory of 1,000 runs, against reading every run (not run in CI).

The directory (written through CsvStore, the real format) holds 1,000 runs, each 20
cases x 4 metrics (a timing, a throughput, two memory figures) x 50 raw samples and 50
device samples per case: the two runs of a real git repository's commits A and B, and
998 runs of ten other repositories (a results directory that cron shares between
repositories, or that CI runs accumulate in). Timed, in one invocation:

- baseline: what reading points did before (store.csvread.read_run of every run
  directory, device samples included), in this process;
- `commitbench compare A B --repo R` and `commitbench report --repo R`, each as a user
  runs it (a fresh process: start-up, reading, the table or the 20 plots), the median
  of --repeat runs; the report of one case (what reading and the page cost besides
  the plots) and `commitbench --help` (start-up alone); and the reads alone in this
  process (ReadStore.series_points and points for the pair, series_points for the
  repository).

Prints each time and the ratios to the baseline. Target (issue 11): compare and report
each under 2 s.

    .venv/bin/python perf/csv_read.py                # 1,000 runs (~1 minute to write)
    .venv/bin/python perf/csv_read.py --runs 100     # a quick check
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.points import PointFilter
from commitbench.model.records import (
    CommitInfo,
    DeviceSample,
    MachineInfo,
    ResultRecord,
    RunEnd,
    RunHeader,
    RunInfo,
)
from commitbench.store.csv import CsvStore
from commitbench.store.csvread import find_runs, read_run

CASES = 20
SAMPLES = 50  # raw samples per metric
TICKS = 50  # device samples per case
OTHER_REPOSITORIES = 10
T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)
TARGET_S = 2.0


def results(level: float, start: datetime) -> list[ResultRecord]:
    out = []
    for c in range(CASES):
        at = start + timedelta(seconds=6 * c)
        base = level * 0.001 * (1 + c % 7)
        times = [base * (1 + 0.0005 * ((k * 7) % 13)) for k in range(SAMPLES)]
        out.append(
            ResultRecord(
                case=CaseKey.of(f"bench_{c // 5}.case", {"size": c}),
                status="ok",
                duration_s=5.0,
                started_at=at,
                metrics=(
                    MetricRecord.from_samples("time", times, unit="s"),
                    MetricRecord.from_samples(
                        "time.tflops", [1 / t for t in times], unit="TFLOP/s", direction="higher"
                    ),
                    MetricRecord.from_samples("peak_rss", [3000.0 + c] * SAMPLES, unit="MiB"),
                    MetricRecord.from_samples("gpu_mem", [20000.0 + c] * SAMPLES, unit="MiB"),
                ),
                device_samples=tuple(
                    DeviceSample(
                        time=at + timedelta(milliseconds=100 * k),
                        gpu_index=0,
                        gpu_util_pct=float(60 + k % 40),
                        gpu_mem_mib=20000.0 + k,
                        power_w=450.5 + k % 7,
                        sm_clock_mhz=1980.0,
                        temperature_c=61.0,
                        throttle_reasons=0,
                        cpu_util_pct=99.5,
                        rss_mib=3000.25,
                    )
                    for k in range(TICKS)
                ),
            )
        )
    return out


def record(store: CsvStore, header: RunHeader, rows: list[ResultRecord]) -> None:
    store.open_run(header)
    for i in range(0, len(rows), 5):  # one unit per bench module of 5 cases
        store.write_unit(header.run.id, rows[i : i + 5])
    store.finish_run(header.run.id, RunEnd(header.run.started_at + timedelta(minutes=3), "ok", ()))


def header(repository: str, sha: str, parent: str | None, when: datetime) -> RunHeader:
    return RunHeader(
        run=RunInfo(uuid.uuid4(), when + timedelta(hours=1), "cron", "full", "main"),
        commit=CommitInfo(
            repository=repository,
            sha=sha,
            parents=(parent,) if parent else (),
            committed_at=when,
            subject="perf",
        ),
        machine=MachineInfo.from_facts(gpu_name="NVIDIA H100 80GB HBM3", gpu_count=1),
    )


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": T0.isoformat(), "GIT_COMMITTER_DATE": T0.isoformat()}
    out = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def build(root: Path, runs: int) -> tuple[Path, str, str]:
    """The results directory and the repository with A and B (see the module)."""
    repo = root / "model"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Ada")
    git(repo, "config", "user.email", "ada@example.com")
    git(repo, "commit", "-q", "--allow-empty", "-m", "A")
    a = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "-q", "--allow-empty", "-m", "B")
    b = git(repo, "rev-parse", "HEAD")
    store = CsvStore(root / "results")
    record(store, header(str(repo), a, None, T0), results(1.0, T0))
    record(store, header(str(repo), b, a, T0 + timedelta(days=1)), results(1.08, T0))
    others = results(1.0, T0)  # the same values in every other run: only the size matters
    per_repo = -(-(runs - 2) // OTHER_REPOSITORIES)
    for i in range(runs - 2):
        r, k = divmod(i, per_repo)
        when = T0 + timedelta(days=k)
        sha = f"{r:08x}{k:032x}"
        record(store, header(f"https://example.com/acme/repo{r}.git", sha, None, when), others)
    return repo, a, b


def timed(fn: object, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - start)
    return out


def command(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "commitbench", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode not in (0, 1):
        raise SystemExit(f"commitbench {' '.join(args)} failed:\n{proc.stderr}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="run directories to write")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cb-csv-read-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        repo, a, b = build(root, args.runs)
        results_dir = root / "results"
        size = sum(p.stat().st_size for p in results_dir.rglob("*") if p.is_file())
        print(
            f"{args.runs} runs ({CASES} cases x 4 metrics x {SAMPLES} samples, {TICKS} device "
            f"samples per case): {size / 2**20:.0f} MiB, written in "
            f"{time.perf_counter() - start:.1f} s"
        )

        def baseline() -> None:
            for folder in find_runs(results_dir):
                read_run(folder)

        old = statistics.median(timed(baseline, 1))
        store = CsvStore(results_dir)
        pair = PointFilter(repository=str(repo), shas=[a, b])
        reads = {
            "compare's reads (series_points + points of A, B)": lambda: (
                store.series_points(pair),
                store.points(pair),
            ),
            "report's read (series_points of the repository)": lambda: store.series_points(
                PointFilter(repository=str(repo))
            ),
        }
        common = ("--repo", str(repo), "--results", str(results_dir), "--json")
        commands = {
            "commitbench compare A B": lambda: command("compare", a, b, *common),
            "commitbench report (20 plots)": lambda: command(
                "report", "--out", str(root / "report"), *common
            ),
            "commitbench report --case bench_0.case[size=0] (1 plot)": lambda: command(
                "report", "--out", str(root / "report1"), "--case", "bench_0.case[size=0]", *common
            ),
            "commitbench --help (start-up alone)": lambda: command("--help"),
        }
        print(f"\nbaseline: read_run of every run directory: {old:.2f} s")
        print(f"\n{'':<58} {'median':>8} {'min':>8}  baseline/median")
        worst = 0.0
        for label, fn in [*reads.items(), *commands.items()]:
            times = timed(fn, args.repeat)
            t = statistics.median(times)
            print(f"{label:<58} {t:7.3f}s {min(times):7.3f}s  {old / t:8.1f}x")
            if label.startswith("commitbench ") and not label.endswith("(start-up alone)"):
                worst = max(worst, t)
        print(f"\ntarget: compare and report each under {TARGET_S:.0f} s: slowest {worst:.2f} s")
        return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
