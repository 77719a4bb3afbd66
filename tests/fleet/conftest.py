"""Fleet fixtures: real worker processes on the test database, tiny real repositories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import Engine, text

from tests.gitrepo import GitBuilder

TINY = """\
import commitbench as cb


@cb.bench
def tiny(ctx: cb.Context) -> None:
    ctx.record("answer", 42, unit="count", better="higher")
"""

# Results per (commit, case, machine, profile) beyond the first: must stay empty.
DUPLICATES = text(
    "SELECT c.sha, k.label, count(*) FROM results r JOIN runs u ON u.id = r.run_id "
    "JOIN commits c ON c.id = u.commit_id JOIN cases k ON k.id = r.case_id "
    "GROUP BY c.repository, c.sha, k.label, u.machine_id, u.profile HAVING count(*) > 1"
)


def tiny_repo(path: Path, commits: int, files: dict[str, str] | None = None) -> list[str]:
    g = GitBuilder(path)
    return [
        g.commit(f"c{i}", {"benches/bench_tiny.py": TINY, **(files or {})} if i == 0 else None)
        for i in range(commits)
    ]


@dataclass
class Fleet:
    """Starts `commitbench worker` processes; each logs to its own file."""

    db: str
    folder: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    files: list[IO[str]] = field(default_factory=list)

    def start(self, *args: str) -> subprocess.Popen[str]:
        n = len(self.procs)
        out = open(self.folder / f"worker{n}.out", "w")  # noqa: SIM115 - closed by close()
        err = open(self.folder / f"worker{n}.err", "w")  # noqa: SIM115
        self.files += [out, err]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "commitbench",
                "worker",
                "--json",
                "--cache",
                str(self.folder / "cache"),
                "--poll",
                "0.1",
                "--reconnect-max",
                "0.5",
                "--name",
                f"w{n}",
                "--pass-env",
                "COMMITBENCH_TEST_GATE",
                *args,
            ],
            stdout=out,
            stderr=err,
            text=True,
            # bench_slow's cases wait for the gate file: a test acts while they wait.
            env={**os.environ, "COMMITBENCH_DB": self.db, "COMMITBENCH_TEST_GATE": str(self.gate)},
        )
        self.procs.append(proc)
        return proc

    @property
    def gate(self) -> Path:
        return self.folder / "gate"

    def open_gate(self) -> None:
        self.gate.touch()

    def log(self, proc: subprocess.Popen[str]) -> str:
        return (self.folder / f"worker{self.procs.index(proc)}.err").read_text()

    def wait(
        self, proc: subprocess.Popen[str], timeout: float = 120, code: int = 0
    ) -> dict[str, Any]:
        rc = proc.wait(timeout=timeout)
        assert rc == code, self.log(proc)
        out = (self.folder / f"worker{self.procs.index(proc)}.out").read_text()
        tally: dict[str, Any] = json.loads(out)
        return tally


@pytest.fixture
def fleet(db_env: str, tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(db_env, tmp_path)
    yield f
    for proc in f.procs:  # only the processes this test started
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for fh in f.files:
        fh.close()


def wait_for(engine: Engine, query: str, at_least: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while conn.execute(text(query)).scalar_one() < at_least:
            assert time.monotonic() < deadline, f"timed out waiting for {query}"
            conn.rollback()
            time.sleep(0.05)
