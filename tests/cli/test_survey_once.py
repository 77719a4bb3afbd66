"""A commit is listed once per invocation, however many rounds measure it: a listing
worker imports the bench module (torch and CUDA's libraries on a GPU box, seconds each
time), and check, compare --measure and bisect measure each commit in many rounds."""

from __future__ import annotations

from pathlib import Path

from tests.gitrepo import GitBuilder

COUNTED = """
import os
import sys
import time

import commitbench as cb

with open(os.environ["COMMITBENCH_TEST_IMPORTS"], "a") as f:
    f.write(("list" if "--list" in sys.argv else "measure") + "\\n")


@cb.bench
def nap(ctx):
    ctx.time("nap", lambda: time.sleep(0.002), warmup=0, repeat=5)
"""


def _imports(log: Path) -> dict[str, int]:
    lines = log.read_text().split()
    return {kind: lines.count(kind) for kind in ("list", "measure")}


def test_compare_measure_lists_each_commit_once_for_all_its_rounds(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch
) -> None:
    g = GitBuilder(tmp_path / "repo")
    base = g.commit("bench", {"benches/counted.py": COUNTED})
    head = g.commit("readme", {"README": "x"})
    log = tmp_path / "imports.log"
    monkeypatch.setenv("COMMITBENCH_TEST_IMPORTS", str(log))
    done = cli(
        "compare", base, head, "--measure", "--repo", str(g.path), "--benches", "benches",
        "--results", str(tmp_path / "r"), "--filter", "counted.nap", "--processes", "3",
        "--max-processes", "3", "--pass-env", "COMMITBENCH_TEST_IMPORTS",
    )  # fmt: skip
    assert done.code in (0, 1), done.err
    # --filter makes every round list first: once per commit, then 3 measuring
    # processes per side (6 listings before the survey was kept).
    assert _imports(log) == {"list": 2, "measure": 6}
