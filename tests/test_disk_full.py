"""A results (or spool) directory whose disk fills up mid-run: what was measured stays in
memory and is named, nothing is half-written, and the exit status says so (1, or 3
when nothing at all could be stored). The disk is a real one: a 256 KiB tmpfs, mounted
by the test (the tests run as root, as CI does; a file size limit would not do, since
it stops git's worktrees too)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from commitbench.runner.recorder import MetricsRecorder
from commitbench.store.csv import MANIFEST, CsvStore, read_run
from tests import factories as f
from tests.conftest import DatabaseOutage
from tests.gitrepo import CASES, SLOW_CASES, bench_repo


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.reason = os.strerror(errno.ENOSPC)

    def fill(self) -> None:
        """No file can grow on the disk from now on."""
        with open(self.path / "filler", "wb", buffering=0) as fh:
            for chunk in (4096, 1):
                try:
                    while True:
                        fh.write(b"\0" * chunk)
                except OSError as err:
                    assert err.errno == errno.ENOSPC


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    where = tmp_path / "disk"
    where.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.fail(f"a full disk needs a tmpfs mounted (as root): {mount.stderr.strip()}")
    try:
        yield SmallDisk(where)
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _run(repo: Path, results: Path, gate: Path, *revs: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "COMMITBENCH_DB"}
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
            "--results",
            str(results),
            "--pass-env",
            "COMMITBENCH_TEST_GATE",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "COMMITBENCH_TEST_GATE": str(gate)},
    )


def _parts(results: Path) -> int:
    manifests = list(results.glob(f"*/{MANIFEST}"))
    return sum(len(read_run(m.parent).units) for m in manifests)


def test_a_full_disk_mid_run_names_what_was_measured_and_not_written(
    small_disk: SmallDisk, tmp_path: Path
) -> None:
    g, shas = bench_repo(tmp_path / "repo", commits=2, slow=True)
    results, gate = small_disk.path / "results", tmp_path / "gate"
    proc = _run(g.path, results, gate, *shas)
    try:
        deadline = time.monotonic() + 120
        while not results.is_dir() or _parts(results) < 1:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        small_disk.fill()  # bench_model of the first commit is written
        gate.touch()
        _out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert (proc.returncode, "Traceback" in err) == (1, False), err
    where = f"{small_disk.reason} ({results})"
    assert (
        f"commitbench: warning: could not write 2 results of {shas[0][:12]}: {where}; "
        f"measured but not recorded: {', '.join(SLOW_CASES)}\n"
    ) in err
    assert (
        f"commitbench: warning: could not write 5 results of {shas[1][:12]}: {where}; "
        f"measured but not recorded: {', '.join(CASES + SLOW_CASES)}\n"
    ) in err
    # What was written is whole: the first commit's first unit, no end (a later run
    # resumes it); nothing half-written is named by a manifest.
    (folder,) = [m.parent for m in results.glob(f"*/{MANIFEST}")]
    data = read_run(folder)
    assert data.header.commit.sha == shas[0]
    assert [r.case.label for r in data.results] == CASES
    assert data.end is None


def test_a_disk_full_from_the_start_keeps_nothing_and_exits_3(
    small_disk: SmallDisk, tmp_path: Path
) -> None:
    g, (sha,) = bench_repo(tmp_path / "repo", commits=1)
    results, gate = small_disk.path / "results", tmp_path / "gate"
    results.mkdir()
    gate.touch()
    small_disk.fill()
    proc = _run(g.path, results, gate, sha)
    out, err = proc.communicate(timeout=300)

    assert (proc.returncode, "Traceback" in err) == (3, False), err
    assert (
        f"commitbench: warning: could not write 3 results of {sha[:12]}: "
        f"{small_disk.reason} ({results}); measured but not recorded: {', '.join(CASES)}\n"
    ) in err
    assert "3 results for 1 commit" in out
    assert list(results.glob(f"*/{MANIFEST}")) == []


def test_a_full_spool_after_the_database_is_lost_keeps_the_rest_in_memory(
    small_disk: SmallDisk, db_env: str, engine: Engine, outage: DatabaseOutage, tmp_path: Path
) -> None:
    """The database lost mid-run and the spool's disk full: the first unit is in the
    database, everything after it is named as measured and not recorded; exit 1."""
    g, shas = bench_repo(tmp_path / "repo", commits=2, slow=True)
    spool, gate = small_disk.path / "spool", tmp_path / "gate"
    proc = _run(g.path, spool, gate, *shas, "--db", db_env)
    try:
        deadline = time.monotonic() + 120
        with engine.connect() as conn:
            while conn.execute(text("SELECT count(*) FROM results")).scalar_one() < len(CASES):
                assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
                time.sleep(0.01)
                conn.rollback()
        small_disk.fill()
        outage.begin()
        gate.touch()
        _out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        outage.end()

    assert (proc.returncode, "Traceback" in err) == (1, False), err
    where = f"{small_disk.reason} ({spool})"
    assert (
        f"could not write 2 results of {shas[0][:12]}: {where}; "
        f"measured but not recorded: {', '.join(SLOW_CASES)}\n"
    ) in err
    assert (
        f"could not write 5 results of {shas[1][:12]}: {where}; "
        f"measured but not recorded: {', '.join(CASES + SLOW_CASES)}\n"
    ) in err
    assert "commitbench import" not in err  # nothing was spooled to import
    assert list(spool.glob(f"*/{MANIFEST}")) == []


def test_a_unit_the_disk_refused_is_written_with_the_next_once_space_is_back(
    small_disk: SmallDisk,
) -> None:
    header = f.header()
    results = small_disk.path / "results"
    rec = MetricsRecorder(CsvStore(results), header)
    with rec:
        rec.add(f.result(i=0))
        rec.flush()
        small_disk.fill()
        rec.add(f.result(i=1))
        rec.flush()  # refused: kept in memory
        assert rec.storage_error == f"{small_disk.reason} ({results})"
        (small_disk.path / "filler").unlink()
        rec.add(f.result(i=2))
        rec.flush()
    assert (rec.written, rec.unwritten, rec.end_unwritten) == (3, [], False)
    data = read_run(results / str(header.run.id))
    assert [len(u) for u in data.units] == [1, 2]
    assert data.results == (f.result(i=0), f.result(i=1), f.result(i=2))
    assert data.end is not None and data.end.status == "ok"
