"""Per-case overhead of commitbench against asv, on the same trivial benches and commits.

A throwaway repository gets 5 commits, each holding the same 20 trivial benchmarks twice:
as an asv suite (benchmarks/, a parametrized `time_noop`) and as a commitbench module
(benches/trivial.py, a parametrized `noop`). Both tools measure all 5 commits in one
invocation of this script, in their default mode and in their quick mode:

- asv 0.6.6 with `--python=same` (an existing environment) can only benchmark the
  checked-out tree, so it runs once per commit, in a worktree of that commit;
- commitbench measures the 5 commits in one `commitbench run` (its own worktrees).

The bodies do nothing, so wall time per case is the tool's overhead: process starts,
checkouts, discovery, the timing loop's own cost, recording. Target (issue 4): ours
<= 0.5x asv's in the same mode. asv is not a dependency of commitbench; install it apart:

    python3 -m venv /tmp/asvenv && /tmp/asvenv/bin/pip install asv==0.6.6
    .venv/bin/python perf/overhead.py --asv /tmp/asvenv/bin/asv
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = 20
COMMITS = 5

ASV_BENCH = f"""\
class Trivial:
    params = list(range({CASES}))

    def time_noop(self, i):
        pass
"""
OURS_BENCH = f"""\
import commitbench as cb


@cb.bench(params={{"i": list(range({CASES}))}})
def noop(ctx, i):
    ctx.time("time", lambda: None)
"""
ASV_CONF = {
    "version": 1,
    "project": "trivial",
    "repo": ".",
    "branches": ["main"],
    "environment_type": "existing",
    "benchmark_dir": "benchmarks",
    "results_dir": ".asv/results",
    "html_dir": ".asv/html",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(root: Path) -> list[str]:
    repo = root / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    (repo / "benches").mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "perf")
    git(repo, "config", "user.email", "perf@example.com")
    (repo / "benchmarks" / "__init__.py").write_text("")
    (repo / "benchmarks" / "trivial.py").write_text(ASV_BENCH)
    (repo / "benches" / "trivial.py").write_text(OURS_BENCH)
    (repo / "asv.conf.json").write_text(json.dumps(ASV_CONF))
    shas = []
    for i in range(COMMITS):
        (repo / "README").write_text(f"commit {i}\n")
        git(repo, "add", ".")
        git(repo, "commit", "-qm", f"commit {i}")
        shas.append(git(repo, "rev-parse", "HEAD"))
    return shas


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    begin = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - begin
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def asv_total(asv: str, root: Path, shas: list[str], quick: bool, env: dict[str, str]) -> float:
    repo = root / "repo"
    total = 0.0
    for i, sha in enumerate(shas):
        tree = root / f"asv-{'quick' if quick else 'default'}-{i}"
        git(repo, "worktree", "add", "-q", "--detach", str(tree), sha)
        total += timed([asv, "run", "--python=same", *(["--quick"] if quick else [])], tree, env)
        git(repo, "worktree", "remove", "--force", str(tree))
    return total


def ours_total(commitbench: str, root: Path, shas: list[str], quick: bool) -> float:
    results = root / f"ours-{'quick' if quick else 'default'}"
    cmd = [
        commitbench,
        "run",
        "--repo",
        str(root / "repo"),
        "--benches",
        "benches",
        "--results",
        str(results),
        *(["--quick"] if quick else []),
        *shas,
    ]
    return timed(cmd, root, dict(os.environ))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asv", default=shutil.which("asv") or "asv", help="asv executable")
    parser.add_argument("--commitbench", default=str(Path(sys.executable).with_name("commitbench")))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cb-overhead-"))
    try:
        shas = make_repo(root)
        # asv keeps its machine file in $HOME: give it a throwaway one.
        env = {**os.environ, "HOME": str(root)}
        subprocess.run(
            [args.asv, "machine", "--yes"],
            cwd=root / "repo",
            env=env,
            check=True,
            capture_output=True,
        )
        n = CASES * COMMITS
        print(f"{CASES} trivial cases x {COMMITS} commits = {n} cases per tool and mode")
        for quick in (False, True):
            mode = "quick" if quick else "default"
            a = asv_total(args.asv, root, shas, quick, env)
            o = ours_total(args.commitbench, root, shas, quick)
            print(
                f"{mode:8} asv {a:7.2f} s = {a / n:6.3f} s/case   commitbench {o:7.2f} s = "
                f"{o / n:6.3f} s/case   ratio ours/asv {o / a:5.2f}x (target <= 0.5x)"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
