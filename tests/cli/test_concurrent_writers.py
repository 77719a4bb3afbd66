"""Exactly once under concurrent writers: commitbench processes measuring the same work
at the same time record each (commit, case, machine, profile) once; the others' results
for it are dropped and reported as recorded by another run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from tests.gitrepo import GitBuilder, model_source

# Every case waits until all the runners measuring its commit have reached it (a file
# per runner in a barrier folder, keyed by the commit's model.VERSION), so the runners
# measure each commit at the same time and race to record it.
MEETING_MODULE = """\
import os
import time

import commitbench as cb
import model


@cb.bench(params={"n": [1, 2]})
def meet(ctx: cb.Context, n: int) -> None:
    folder = os.environ["COMMITBENCH_TEST_BARRIER"]
    expected = int(os.environ["COMMITBENCH_TEST_RUNNERS"])
    me = os.path.join(folder, f"{model.VERSION}-{n}-{os.environ['COMMITBENCH_TEST_NAME']}")
    open(me, "w").close()
    deadline = time.monotonic() + 120
    prefix = f"{model.VERSION}-{n}-"
    while sum(f.startswith(prefix) for f in os.listdir(folder)) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError("the other runners never came")
        time.sleep(0.02)
    flat = os.environ.get("COMMITBENCH_TEST_FLAT")
    ctx.record("time", [0.001 * (1 if flat else model.VERSION + 1)] * 3, unit="s")
"""
CASES = ["bench_meet.meet[n=1]", "bench_meet.meet[n=2]"]

PER_KEY = text(
    "SELECT c.sha, k.label, count(*) FROM results r JOIN runs u ON u.id = r.run_id "
    "JOIN commits c ON c.id = u.commit_id JOIN cases k ON k.id = r.case_id "
    "GROUP BY c.sha, k.label ORDER BY c.sha, k.label"
)


def _repo(path: Path, commits: int) -> tuple[GitBuilder, list[str]]:
    g = GitBuilder(path)
    shas = [
        g.commit(f"v{i}", {"model.py": model_source(i), "benches/bench_meet.py": MEETING_MODULE})
        for i in range(commits)
    ]
    return g, shas


def _start(
    repo: Path,
    db: str,
    barrier: Path,
    name: str,
    runners: int,
    *extra: str,
    json_output: bool = True,
    command: str = "run",
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commitbench",
            command,
            *extra,
            "--repo",
            str(repo),
            "--benches",
            "benches",
            "--db",
            db,
            *(["--json"] if json_output else []),
            *("--pass-env", "COMMITBENCH_TEST_BARRIER"),
            *("--pass-env", "COMMITBENCH_TEST_RUNNERS"),
            *("--pass-env", "COMMITBENCH_TEST_NAME"),
            *("--pass-env", "COMMITBENCH_TEST_FLAT"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "COMMITBENCH_TEST_BARRIER": str(barrier),
            "COMMITBENCH_TEST_RUNNERS": str(runners),
            "COMMITBENCH_TEST_NAME": name,
            "COMMITBENCH_TEST_FLAT": "1" if command == "check" else "",
        },
    )


def _finish(procs: list[subprocess.Popen[str]], *, as_json: bool = True) -> list[Any]:
    """Each runner's report (its JSON, or its stdout); all of them exited 0."""
    try:
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert (proc.returncode, "Traceback" in err) == (0, False), err
            reports.append(json.loads(out) if as_json else out)
        return reports
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _per_key(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(PER_KEY)]  # type: ignore[misc]


def test_four_concurrent_runs_record_each_case_once(
    db_env: str, engine: Engine, tmp_path: Path
) -> None:
    g, shas = _repo(tmp_path / "repo", commits=4)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [_start(g.path, db_env, barrier, f"r{i}", 4, "HEAD~3..HEAD") for i in range(4)]
    reports = _finish(procs)

    measured = shas[1:]  # HEAD~3..HEAD: the last three commits
    assert _per_key(engine) == [(sha, case, 1) for sha in sorted(measured) for case in CASES]
    # Every runner measured every case (the barrier saw to it); per commit, one runner
    # recorded both cases (one unit) and the three others were told another run had.
    for sha in measured:
        commits = [c for r in reports for c in r["commits"] if c["sha"] == sha]
        assert [len(c["results"]) for c in commits] == [2, 2, 2, 2]
        assert sorted(c["recorded_elsewhere"] for c in commits) == [[], CASES, CASES, CASES]
    assert [r["exit"] for r in reports] == [0, 0, 0, 0]


def test_concurrent_forced_runs_add_one_new_result_per_case(
    db_env: str, engine: Engine, tmp_path: Path
) -> None:
    """--force measures again what was recorded before it started; two forced runs at
    once add one new result per case between them, not two."""
    g, (sha,) = _repo(tmp_path / "repo", commits=1)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    _finish([_start(g.path, db_env, barrier, "first", 1)])
    assert _per_key(engine) == [(sha, case, 1) for case in CASES]

    again = tmp_path / "again"
    again.mkdir()
    reports = _finish([_start(g.path, db_env, again, f"f{i}", 2, "--force") for i in range(2)])

    assert _per_key(engine) == [(sha, case, 2) for case in CASES]
    elsewhere = sorted(r["commits"][0]["recorded_elsewhere"] for r in reports)
    assert elsewhere == [[], CASES]


def test_the_runner_that_lost_the_race_names_the_cases(
    db_env: str, engine: Engine, tmp_path: Path
) -> None:
    g, (sha,) = _repo(tmp_path / "repo", commits=1)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [_start(g.path, db_env, barrier, f"h{i}", 2, json_output=False) for i in range(2)]
    outs = _finish(procs, as_json=False)
    line = (
        f"  {sha[:12]}: 2 cases already recorded by another run meanwhile, not recorded "
        f"again: {', '.join(CASES)}"
    )
    assert sorted(line in out.splitlines() for out in outs) == [False, True]
    assert _per_key(engine) == [(sha, case, 1) for case in CASES]


def test_two_concurrent_checks_record_each_measurement_once(
    db_env: str, engine: Engine, tmp_path: Path
) -> None:
    """`check` measures through the same store: two checks of the same pair at once
    record base and head once. One process per side and no extension: a check's first
    round measures only what is missing (its later rounds, extensions and confirmation
    re-measure on purpose, which adds results by design)."""
    g, (base, head) = _repo(tmp_path / "repo", commits=2)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        _start(
            g.path,
            db_env,
            barrier,
            f"c{i}",
            2,
            *("--processes", "1", "--max-processes", "1", base, head),
            command="check",
        )
        for i in range(2)
    ]
    reports = _finish(procs)

    assert _per_key(engine) == [(sha, case, 1) for sha in sorted((base, head)) for case in CASES]
    assert [r["confirmed"] for r in reports] == [[], []]
