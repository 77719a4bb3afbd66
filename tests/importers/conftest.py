"""Files written by the real pytest-benchmark and asv, for `commitbench import` to read.

Both tools run for real in subprocesses, on real git repositories in temp dirs: the
tests read what the tools write, never JSON written by hand. Each project is built once
per session; a test that damages a file works on its own copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.gitrepo import GitBuilder

ORIGIN = "https://ci-bot:s3cret-token@example.com/team/speed.git"
ORIGIN_PUBLIC = "https://example.com/team/speed.git"

SPEED_TESTS = """\
import pytest


def work(n):
    return sum(range(n))


@pytest.mark.parametrize("n", [10, 1000])
def test_work(benchmark, n):
    benchmark(work, n)


class TestKinds:
    @pytest.mark.parametrize("kind", ["list", "tuple"])
    def test_build(self, benchmark, kind):
        benchmark.extra_info["items"] = 3
        make = list if kind == "list" else tuple
        benchmark.pedantic(make, args=(range(3),), rounds=7, iterations=2)
"""


def run_pytest_benchmark(repo: Path, out: Path, *, saved: bool = False) -> dict[str, Any]:
    """pytest-benchmark over benches/test_speed.py in `repo`, its JSON written to `out`:
    `--benchmark-json` (which always holds the raw times), or when `saved`, the file
    `--benchmark-save` stores without `--benchmark-save-data` (statistics only)."""
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--benchmark-min-rounds=5",
        "--benchmark-max-time=0.002",
        "--benchmark-warmup=off",
        "benches/test_speed.py",
    ]
    storage = out.parent / f"{out.stem}-storage"
    if saved:
        args += ["--benchmark-save=speed", f"--benchmark-storage=file://{storage}"]
    else:
        args += [f"--benchmark-json={out}", "--benchmark-save-data"]
    subprocess.run(args, cwd=repo, check=True, capture_output=True, text=True, timeout=120)
    if saved:
        (stored,) = storage.glob("*/0001_speed.json")
        stored.rename(out)
    return dict(json.loads(out.read_text()))


@dataclass(frozen=True)
class PytestProject:
    repo: GitBuilder
    sha: str
    json: Path  # --benchmark-json: with the raw times
    stats_only: Path  # --benchmark-save without --benchmark-save-data

    def load(self, path: Path | None = None) -> dict[str, Any]:
        return dict(json.loads((path or self.json).read_text()))


@pytest.fixture(scope="session")
def pb_project(tmp_path_factory: pytest.TempPathFactory) -> PytestProject:
    base = tmp_path_factory.mktemp("pb")
    g = GitBuilder(base / "repo")
    g.git("remote", "add", "origin", ORIGIN)
    g.commit("first", {"README": "speed\n"})
    sha = g.commit("speed tests", {"benches/test_speed.py": SPEED_TESTS})
    run_pytest_benchmark(g.path, base / "out.json")
    run_pytest_benchmark(g.path, base / "stats.json", saved=True)
    return PytestProject(g, sha, base / "out.json", base / "stats.json")


ASV_CONF = {
    "version": 1,
    "project": "speed",
    "project_url": "https://example.com/",
    "repo": ".",
    "branches": ["main"],
    "environment_type": "existing",
    "benchmark_dir": "benchmarks",
    "results_dir": "results",
    "html_dir": "html",
    "env_dir": "env",
}

ASV_BENCHMARKS = """\
class TimeBuild:
    params = ([10, 100], ["list", "tuple"])
    param_names = ["n", "kind"]

    def time_build(self, n, kind):
        (list if kind == "list" else tuple)(range(n))


class TimeSkip:
    params = [1, 2]
    param_names = ["step"]

    def setup(self, step):
        if step == 2:
            raise NotImplementedError  # asv: this combination is skipped (n/a)

    def time_step(self, step):
        pass


def time_fails():
    raise RuntimeError("broken on purpose")


def mem_list():
    return [0] * 1000


def peakmem_list():
    [0] * 100000


def track_widgets():
    return VERSION


track_widgets.unit = "widgets"
"""


MACHINE = ["--machine", "testbox", "--arch", "x86_64", "--cpu", "Test CPU 3000"]
MACHINE += ["--num_cpu", "4", "--os", "Linux", "--ram", "16GB"]
# Three samples per benchmark (one round), no warm-up: seconds, not minutes.
QUICK = ["-a", "repeat=3", "-a", "rounds=1", "-a", "warmup_time=0"]


@dataclass(frozen=True)
class AsvProject:
    repo: GitBuilder
    shas: tuple[str, str]
    results: Path

    def result_file(self, sha: str) -> Path:
        (found,) = (self.results / "testbox").glob(f"{sha[:8]}-*.json")
        return found


def asv(project: Path, home: Path, *args: str, ok: tuple[int, ...] = (0,)) -> None:
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "asv", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in ok, done.stdout + done.stderr


@pytest.fixture(scope="session")
def asv_project(tmp_path_factory: pytest.TempPathFactory) -> AsvProject:
    """Two commits measured by `asv run` in the existing environment: the first without
    raw samples, the second with `--record-samples`. asv exits 2: time_fails fails."""
    base = tmp_path_factory.mktemp("asv")
    home = base / "home"
    home.mkdir()
    g = GitBuilder(base / "repo")
    g.git("remote", "add", "origin", ORIGIN)
    files = {
        "asv.conf.json": json.dumps(ASV_CONF),
        ".gitignore": "results/\nhtml/\nenv/\n",
        "benchmarks/__init__.py": "",
    }
    shas = []
    for version, samples in ((1, []), (2, ["--record-samples"])):
        bench = ASV_BENCHMARKS.replace("VERSION", str(version))
        sha = g.commit(f"version {version}", {**files, "benchmarks/bench.py": bench})
        if version == 1:  # asv reads asv.conf.json first
            asv(g.path, home, "machine", "--yes", *MACHINE)
        run = ["run", "--python=same", f"--set-commit-hash={sha}", "--machine", "testbox"]
        asv(g.path, home, *run, *QUICK, *samples, ok=(2,))
        shas.append(sha)
    return AsvProject(g, (shas[0], shas[1]), g.path / "results")
