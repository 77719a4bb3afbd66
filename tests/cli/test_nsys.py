"""`run --nsys`: the measuring workers under `nsys profile`, or one line and exit 2
when nsys is not on PATH.

This machine has no Nsight Systems: the not-found path runs for real (the command in its
own process, PATH without nsys), the command line is checked as a pure function, and the
wiring through the runner with a stand-in on PATH that does what matters here of what
nsys does (runs the worker as its child, the result pipe inherited, and writes the
report it was asked for). The real nsys has not been run by these tests."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from commitbench.errors import ConfigError
from commitbench.runner import nsys
from commitbench.store.csv import CsvStore
from tests.gitrepo import GitBuilder

BENCH = """\
import commitbench as cb


@cb.bench(params={"n": [1, 2]})
def add(ctx, n):
    ctx.time("time", lambda: sum(range(n)), warmup=0, repeat=3)
"""

# Runs the worker as its child (as nsys does: it does not exec), records its arguments,
# and writes the report named by --output.
STAND_IN = f"""\
#!{sys.executable}
import subprocess, sys
args = sys.argv[1:]
assert args[0] == "profile", args
output = next(a.split("=", 1)[1] for a in args if a.startswith("--output="))
worker = args[4:]  # after profile and its three options
with open(output + ".args", "w") as fh:
    fh.write("\\n".join(args))
code = subprocess.run(worker, close_fds=False).returncode
with open(output + ".nsys-rep", "w") as fh:
    fh.write("report")
sys.exit(code)
"""


def test_the_command_line() -> None:
    worker = ["/usr/bin/python3", "-m", "commitbench.worker", "bench.tiny", "--profile", "smoke"]
    assert nsys.command("/opt/nsys/bin/nsys", Path("/r/RUN/nsys/bench.tiny-1"), worker) == [
        "/opt/nsys/bin/nsys",
        "profile",
        "--trace=cuda,nvtx,osrt",
        "--output=/r/RUN/nsys/bench.tiny-1",
        "--force-overwrite=true",
        *worker,
    ]
    run_id = uuid.UUID(int=7)
    assert nsys.folder(Path("/r"), run_id) == Path(f"/r/{run_id}/nsys")


def test_each_worker_gets_a_report_of_its_own(tmp_path: Path) -> None:
    capture = nsys.Capture("nsys", tmp_path / "RUN" / "nsys")
    first = capture.wrap("bench.tiny", ["w"])
    second = capture.wrap("bench.tiny", ["w"])
    other = capture.wrap("bench.other", ["w"])
    assert other[3] == f"--output={tmp_path}/RUN/nsys/bench.other-1"  # counted per module
    assert first[3] == f"--output={tmp_path}/RUN/nsys/bench.tiny-1"
    assert second[3] == f"--output={tmp_path}/RUN/nsys/bench.tiny-2"
    assert (first[-1], second[-1]) == ("w", "w")
    assert (tmp_path / "RUN" / "nsys").is_dir()


def test_find_takes_nsys_from_the_path(tmp_path: Path) -> None:
    found = tmp_path / "bin" / "nsys"
    found.parent.mkdir()
    found.write_text("#!/bin/sh\n")
    found.chmod(0o755)
    assert nsys.find(str(found.parent)) == str(found)
    with pytest.raises(ConfigError, match="nsys is not found on PATH"):
        nsys.find(str(tmp_path))


def test_without_nsys_on_path_run_says_so_in_one_line(tmp_path: Path) -> None:
    g = GitBuilder(tmp_path / "repo")
    sha = g.commit("tiny", {"benches/tiny.py": BENCH})
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    out = tmp_path / "r"
    env = {**os.environ, "PATH": str(empty)}
    env.pop("COMMITBENCH_DB", None)
    where = ("--repo", str(g.path), "--benches", "benches", "--results", str(out))
    done = subprocess.run(
        [sys.executable, "-m", "commitbench", "run", sha, *where, "--nsys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"commitbench: error: {nsys.NOT_FOUND}\n"
    assert not out.exists()  # nothing measured, nothing written


def test_quick_and_nsys_are_refused_together(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = cli("run", "--nsys", "--quick", "--results", str(tmp_path / "r"))
    assert (done.code, done.out) == (2, "")
    assert done.err == (
        "commitbench: error: give --nsys or --quick (which records nothing), not both\n"
    )


def test_each_measuring_worker_runs_under_nsys(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = GitBuilder(tmp_path / "repo")
    sha = g.commit("tiny", {"benches/tiny.py": BENCH})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "nsys"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("COMMITBENCH_DB", raising=False)
    out = tmp_path / "r"
    where = ("--repo", str(g.path), "--benches", "benches", "--results", str(out))
    done = cli("run", sha, *where, "--nsys", "--isolate", "case")
    assert done.code == 0, done.err
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    results = CsvStore(out).load_run(uuid.UUID(run_dir.name)).results
    assert sorted((r.case.label, r.status) for r in results) == [
        ("tiny.add[n=1]", "ok"),
        ("tiny.add[n=2]", "ok"),
    ]
    reports = sorted(p.name for p in (run_dir / "nsys").glob("*.nsys-rep"))
    assert reports == ["tiny-1.nsys-rep", "tiny-2.nsys-rep"]  # one per case's worker
    args = (run_dir / "nsys" / "tiny-1.args").read_text().splitlines()
    assert args[:4] == [
        "profile",
        "--trace=cuda,nvtx,osrt",
        f"--output={run_dir}/nsys/tiny-1",
        "--force-overwrite=true",
    ]
    assert args[4:7] == [sys.executable, "-m", "commitbench.worker"]
