"""A commit's worktree made ready for its workers: the bench folder and its modules,
the folders on the workers' path, and the `--setup` command run there.

Separate from the Runner (runner.py), which decides whether a commit needs a worktree at
all: these are what it does with one once it has it, each a function of the options and
the worktree.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from commitbench.harness import discovery
from commitbench.model.cases import CaseKey
from commitbench.model.records import ResultRecord, utcnow
from commitbench.model.text import storable
from commitbench.runner.environ import bench_environment
from commitbench.runner.options import RunOptions
from commitbench.runner.selection import builtin_benches

SETUP_CASE = "commitbench.setup"
SETUP_TAIL_CHARS = 4000


def is_module_file(path: str | None) -> bool:
    """Whether --benches names one bench module (a `.py` file), not a directory."""
    return path is not None and path.endswith(".py")


def bench_dir(options: RunOptions, tree: Path) -> tuple[Path, list[str]] | None:
    """The folder that goes on the workers' path and the bench modules in it: every
    module below a directory, or the one module a `.py` file is (named after it)."""
    if options.benches is None:
        folder = builtin_benches()
    else:
        folder = Path(options.benches)
        folder = folder if folder.is_absolute() else tree / folder
    if is_module_file(str(folder)) and folder.is_file():
        return folder.parent, [folder.stem]
    if not folder.is_dir():
        return None  # not there yet at this commit
    return folder, discovery.find_modules(folder, under=(".",))


def worker_path(options: RunOptions, tree: Path, benches: Path) -> tuple[Path, ...]:
    """The workers' PYTHONPATH: the bench folder, then --pythonpath (relative to the
    worktree), else the worktree and its src/ where there is one."""
    if options.pythonpath is not None:
        extra = [Path(p) if Path(p).is_absolute() else tree / p for p in options.pythonpath]
    else:
        extra = [tree] + ([tree / "src"] if (tree / "src").is_dir() else [])
    return (benches, *extra)


def run_setup(options: RunOptions, tree: Path) -> ResultRecord | None:
    """Run --setup in the worktree; a failure becomes a failed result of the commit."""
    if options.setup is None:
        return None
    started = utcnow()
    t0 = time.perf_counter()
    done = subprocess.run(  # noqa: S602 - the user's own setup command, run as given
        options.setup,
        shell=True,
        cwd=tree,
        env=bench_environment(os.environ, options.pass_env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return None
    tail = storable((done.stdout + done.stderr)[-SETUP_TAIL_CHARS:])
    return ResultRecord(
        case=CaseKey.of(SETUP_CASE),
        status="failed",
        error=f"setup command exited with {done.returncode}:\n{tail}",
        duration_s=time.perf_counter() - t0,
        started_at=started,
    )
