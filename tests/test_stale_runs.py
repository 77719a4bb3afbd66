"""A runner killed outright (SIGKILL) leaves its run `running`; the next run on the same
machine marks it `interrupted` and resumes its cases. A live runner's run is never
touched, whatever runs beside it (runner/liveness.py)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine, text

from commitbench.runner import liveness
from commitbench.store.sql import SqlStore
from tests import factories as f
from tests.gitrepo import CASES, SLOW_CASES, bench_repo

RUNS = text(
    "SELECT u.id, c.sha, u.status, u.finished_at IS NULL AS open, "
    "array(SELECT k.label FROM results r JOIN cases k ON k.id = r.case_id "
    "      WHERE r.run_id = u.id ORDER BY k.label) AS cases "
    "FROM runs u JOIN commits c ON c.id = u.commit_id ORDER BY u.started_at"
)


def _start(repo: Path, db: str, gate: Path, *revs: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commitbench",
            "run",
            *revs,
            "--repo",
            str(repo),
            "--benches",
            "benches",
            "--db",
            db,
            "--pass-env",
            "COMMITBENCH_TEST_GATE",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COMMITBENCH_TEST_GATE": str(gate)},
    )


def _wait_for_results(engine: Engine, proc: subprocess.Popen[str], count: int) -> None:
    deadline = time.monotonic() + 120
    with engine.connect() as conn:
        while conn.execute(text("SELECT count(*) FROM results")).scalar_one() < count:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.01)
            conn.rollback()


def _runs(engine: Engine) -> list[tuple[str, str, bool, list[str]]]:
    with engine.connect() as conn:
        return [
            (sha, status, is_open, cases) for _id, sha, status, is_open, cases in conn.execute(RUNS)
        ]


def test_a_run_killed_outright_is_marked_interrupted_by_the_next(
    db_env: str, engine: Engine, tmp_path: Path
) -> None:
    g, (sha,) = bench_repo(tmp_path / "repo", commits=1, slow=True)
    gate = tmp_path / "gate"
    killed = _start(g.path, db_env, gate, sha)
    _wait_for_results(engine, killed, len(CASES))  # bench_slow waits at its gate
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    assert _runs(engine) == [(sha, "running", True, sorted(CASES))]
    with engine.connect() as conn:
        last_end = conn.execute(
            text("SELECT max(started_at + make_interval(secs => duration_s)) FROM results")
        ).scalar_one()

    gate.touch()
    after = _start(g.path, db_env, gate, sha)
    _out, err = after.communicate(timeout=300)

    assert (after.returncode, "Traceback" in err) == (0, False), err
    # The dead run ends at its last result's end; the next run measures only the rest.
    assert _runs(engine) == [
        (sha, "interrupted", False, sorted(CASES)),
        (sha, "ok", False, sorted(SLOW_CASES)),
    ]
    with engine.connect() as conn:
        (run_id, finished_at) = conn.execute(
            text("SELECT id, finished_at FROM runs WHERE status = 'interrupted'")
        ).one()
    assert finished_at == last_end
    assert f"run {run_id} was left running by a runner that is gone: interrupted" in err


def test_a_live_run_beside_is_never_marked(db_env: str, engine: Engine, tmp_path: Path) -> None:
    g, shas = bench_repo(tmp_path / "repo", commits=2, slow=True)
    held, free = tmp_path / "held", tmp_path / "free"
    free.touch()
    alive = _start(g.path, db_env, held, shas[0])
    try:
        _wait_for_results(engine, alive, len(CASES))
        beside = _start(g.path, db_env, free, shas[1])
        _out, err = beside.communicate(timeout=300)
        assert (beside.returncode, "interrupted" in err) == (0, False), err
        assert _runs(engine)[0] == (shas[0], "running", True, sorted(CASES))
        held.touch()
        _out, err = alive.communicate(timeout=300)
    finally:
        if alive.poll() is None:
            alive.kill()
            alive.wait()
    assert alive.returncode == 0, err
    assert sorted(_runs(engine)) == sorted(
        [
            (shas[0], "ok", False, sorted(CASES + SLOW_CASES)),
            (shas[1], "ok", False, sorted(CASES + SLOW_CASES)),
        ]
    )


def _opened(engine: Engine, runner: dict[str, object] | None) -> uuid.UUID:
    header = f.header()
    run = dataclasses.replace(header.run, id=uuid.uuid4(), environment={"runner": runner})
    SqlStore(engine).open_run(dataclasses.replace(header, run=run))
    return run.id


def test_what_is_judged_dead(engine: Engine) -> None:
    """Exact cases of liveness.gone on real processes: this one, a finished child, a
    pid reused (another start time), another boot of this host, another host, another
    pid namespace, a run that recorded no runner."""
    me = liveness.identity()
    child = subprocess.Popen(["true"])
    child.wait()
    cases = {
        "alive": me,
        "exited": {**me, "pid": child.pid, "pid_start": 1},
        "pid reused": {**me, "pid_start": int(me["pid_start"]) + 1},
        "rebooted": {**me, "boot_id": "00000000-0000-0000-0000-000000000000"},
        "other host": {**me, "host": me["host"] + "-other", "pid_start": 1},
        "other pid namespace": {**me, "pid_ns": 1, "pid_start": 1},
        "no runner": None,
    }
    ids = {name: _opened(engine, runner) for name, runner in cases.items()}
    marked = SqlStore(engine).interrupt_stale(f.machine().fingerprint, liveness.gone)
    assert sorted(marked) == sorted(ids[n] for n in ("exited", "pid reused", "rebooted"))
    # A second sweep (another runner at the same time) finds nothing left to mark.
    assert SqlStore(engine).interrupt_stale(f.machine().fingerprint, liveness.gone) == []
