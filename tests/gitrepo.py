"""Real git repositories for tests, built from operations (commits, branches, merges)."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

EPOCH = datetime(2026, 10, 1, 9, 0, 0, tzinfo=timezone.utc)


class GitBuilder:
    """Each commit gets the next minute after EPOCH as author and committer date."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        self.clock = 0
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", branch)
        self.git("config", "user.name", "Ada")
        self.git("config", "user.email", "ada@example.com")

    def git(self, *args: str, date: datetime | None = None) -> str:
        env = {**os.environ}
        if date is not None:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date.isoformat()
        proc = subprocess.run(
            ["git", *args], cwd=self.path, env=env, check=True, capture_output=True, text=True
        )
        return proc.stdout.strip()

    def next_date(self) -> datetime:
        self.clock += 1
        return EPOCH + timedelta(minutes=self.clock)

    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        for name, content in (files or {f"f{self.clock}.txt": message}).items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            self.git("add", name)
        self.git("commit", "-q", "--allow-empty", "-m", message, date=self.next_date())
        return self.head()

    def branch(self, name: str) -> None:
        self.git("checkout", "-q", "-b", name)

    def checkout(self, name: str) -> None:
        self.git("checkout", "-q", name)

    def merge(self, name: str, message: str) -> str:
        self.git("merge", "-q", "--no-ff", "-m", message, name, date=self.next_date())
        return self.head()

    def tag(self, name: str) -> None:
        self.git("tag", name)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


BENCH_MODULE = '''\
"""A bench module living in the measured repository and importing its code."""
import commitbench as cb
import model


@cb.bench(params={"size": [1, 2, 3]})
def compute(ctx: cb.Context, size: int) -> None:
    ctx.time("time", lambda: model.work(size), warmup=1, repeat=5)
    ctx.record("version", model.VERSION, unit="count", better="higher")
'''


def model_source(version: int) -> str:
    return f"VERSION = {version}\n\n\ndef work(n):\n    return sum(range(1000 * n))\n"


SLOW_MODULE = """\
import os
import time

import commitbench as cb


@cb.bench(params={"step": [1, 2]})
def wait(ctx: cb.Context, step: int) -> None:
    # Tests hold the module here until they have done what they test (a signal, a lost
    # database): no race with a starved test process.
    gate = os.environ.get("COMMITBENCH_TEST_GATE")
    while gate and not os.path.exists(gate):
        time.sleep(0.02)
    ctx.time("time", lambda: time.sleep(0.001), warmup=0, repeat=3)
"""


def bench_repo(path: Path, commits: int, slow: bool = False) -> tuple[GitBuilder, list[str]]:
    """A repository whose commit i sets model.VERSION = i, with benches/bench_model.py
    (and, when `slow`, benches/bench_slow.py, whose cases wait for the file named
    by $COMMITBENCH_TEST_GATE)."""
    g = GitBuilder(path)
    files = {"benches/bench_model.py": BENCH_MODULE}
    if slow:
        files["benches/bench_slow.py"] = SLOW_MODULE
    shas = [
        g.commit(f"version {i}", {"model.py": model_source(i), **files}) for i in range(commits)
    ]
    return g, shas


CASES = [f"bench_model.compute[size={n}]" for n in (1, 2, 3)]
SLOW_CASES = [f"bench_slow.wait[step={n}]" for n in (1, 2)]


DELAY_MODULE = """\
import os

import commitbench as cb
import model


@cb.bench()
def step(ctx: cb.Context) -> None:
    # Fixed samples around model.DELAY (+-1.4%) instead of timed sleeps: the verdicts
    # then depend on the commit alone, never on the load of the machine running the test.
    # $COMMITBENCH_TEST_SLOWDOWN scales them, as a run on a loaded machine would.
    slowdown = float(os.environ.get("COMMITBENCH_TEST_SLOWDOWN", "1"))
    level = model.DELAY * slowdown
    ctx.record("time", [level * (1 + 0.002 * (k - 7)) for k in range(15)], unit="s")
    # The harness's own peak RSS differs between processes by a few percent; its rows
    # could then be ambiguous and bring more processes. Fixed, like the time.
    ctx.record("peak_rss", [100.0], unit="MiB")
"""


def delay_repo(path: Path, delays: list[float]) -> tuple[GitBuilder, list[str]]:
    """Commit i makes `model.DELAY = delays[i]`: `delay.step` records 15 samples whose
    median is exactly that many seconds (times $COMMITBENCH_TEST_SLOWDOWN)."""
    g = GitBuilder(path)
    shas = [
        g.commit(f"delay {d}", {"model.py": f"DELAY = {d}\n", "benches/delay.py": DELAY_MODULE})
        for d in delays
    ]
    return g, shas


FLAKY_MODULE = """\
import os
import time

import commitbench as cb


def helper(n):
    if n == 2 and not os.environ.get("COMMITBENCH_TEST_FIXED"):
        raise ValueError(f"boom {n}")
    return n


@cb.bench(params={"n": [1, 2]})
def work(ctx: cb.Context, n: int) -> None:
    ctx.record("count", n, unit="count")  # not a timing: the headline is `time`
    ctx.time("time", lambda: helper(n), warmup=0, repeat=3)


@cb.bench
def later(ctx: cb.Context) -> None:
    time.sleep(0.5)  # long enough for sampler ticks to land on a case that then skips
    ctx.skip("not on this machine")
"""


def flaky_repo(path: Path) -> tuple[GitBuilder, str]:
    """One commit with benches/bench_flaky.py, whose case n=2 fails at line 9 of that
    file unless $COMMITBENCH_TEST_FIXED is set, and whose `later` skips after 0.5 s; and
    benches/bench_model.py, so the directory has two modules."""
    g = GitBuilder(path)
    sha = g.commit(
        "flaky",
        {
            "model.py": model_source(0),
            "benches/bench_flaky.py": FLAKY_MODULE,
            "benches/bench_model.py": BENCH_MODULE,
            "other/bench_other.py": BENCH_MODULE,
            "notes.txt": "not a bench\n",
        },
    )
    return g, sha


FLAKY_CASES = ["bench_flaky.work[n=1]", "bench_flaky.work[n=2]", "bench_flaky.later"]
