"""`commitbench import` with profile files (`--trace` artifacts) beside the runs, through
the real CLI into the real PostgreSQL, on real files.

The runs and their files go in together, in one transaction: a bad file in any run
(bytes that do not hash to its name, over the cap, a link, a FIFO, a directory) ends the
import with exit 2 and one line naming it, and the database, the files' table included,
is exactly as it was, although the directory also holds a good run read first."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from commitbench.errors import CsvFormatError
from commitbench.model.metrics import MetricRecord
from commitbench.model.profile import TIME_PER_ITER
from commitbench.model.records import ResultRecord
from commitbench.runner.recorder import MetricsRecorder
from commitbench.store import artifacts, transfer
from commitbench.store.csv import CsvStore
from commitbench.store.sql import SqlStore
from commitbench.store.tables import ProfileArtifact
from tests import factories as f

GOOD = uuid.UUID(int=1)  # read first: its files must not be written when BAD's are refused
BAD = uuid.UUID(int=2)
EARLIER = uuid.UUID(int=3)  # imported before each test, so the database is not empty


def trace(run_id: uuid.UUID, i: int) -> artifacts.Artifact:
    """A small gzipped trace, different for every run and case."""
    body = f'{{"traceEvents": [{{"name": "aten::mm", "run": "{run_id}", "i": {i}}}]}}'
    return artifacts.Artifact.of("chrome_trace", "", gzip.compress(body.encode(), mtime=0))


def profiled(i: int, item: artifacts.Artifact) -> ResultRecord:
    """The factory's result with a profile metric naming `item`, as `--trace` leaves it."""
    base = f.result(i=i)
    metric = MetricRecord.from_samples(
        TIME_PER_ITER,
        [0.002],
        unit="s",
        properties={artifacts.REFERENCE: {"chrome_trace": item.sha256}},
    )
    return dataclasses.replace(base, metrics=(*base.metrics, metric))


def record(root: Path, run_id: uuid.UUID) -> list[artifacts.Artifact]:
    """A run of a commit of its own, two profiled cases, their traces beside it."""
    items = [trace(run_id, i) for i in range(2)]
    results = [profiled(i, item) for i, item in enumerate(items)]
    with MetricsRecorder(CsvStore(root), f.header(run_id, sha=f"{run_id.int:040x}")) as rec:
        for r in results:
            rec.add(r)
    labelled = [
        dataclasses.replace(a, case_label=r.case.label) for a, r in zip(items, results, strict=True)
    ]
    assert artifacts.CsvArtifacts(root).save(run_id, labelled) == 2
    return labelled


def trace_file(root: Path, run_id: uuid.UUID, item: artifacts.Artifact) -> Path:
    return root / str(run_id) / artifacts.FOLDER / f"{item.sha256}.trace.json.gz"


def rows(engine: Engine) -> dict[str, int]:
    """The row counts of every table, the profile files' included."""
    with engine.connect() as conn:
        files = conn.execute(select(func.count()).select_from(ProfileArtifact)).scalar_one()
    return {**SqlStore(engine).counts(), "profile_artifacts": files}


@pytest.fixture
def results(tmp_path: Path) -> tuple[Path, list[artifacts.Artifact]]:
    """Two runs with their traces: GOOD (read first) and BAD (to be damaged)."""
    root = tmp_path / "results"
    record(root, GOOD)
    return root, record(root, BAD)


@pytest.fixture
def before(cli, db_env: str, engine: Engine, tmp_path: Path) -> dict[str, int]:  # type: ignore[no-untyped-def]
    record(tmp_path / "earlier", EARLIER)
    assert cli("import", str(tmp_path / "earlier")).code == 0
    counts = rows(engine)
    assert (counts["runs"], counts["results"], counts["profile_artifacts"]) == (1, 2, 2)
    return counts


def test_the_runs_and_their_files_go_in_together(  # type: ignore[no-untyped-def]
    cli, engine: Engine, results, before: dict[str, int]
) -> None:
    root, bad_items = results
    done = cli("import", str(root))
    assert (done.code, done.out) == (
        0,
        "imported 2 runs: 4 new results (0 already present), 4 new profile files\n",
    ), done
    after = rows(engine)
    assert (after["runs"], after["results"], after["profile_artifacts"]) == (3, 6, 6)
    store = artifacts.SqlArtifacts(engine)
    for item in bad_items:
        assert store.load(item.sha256) == item.data
    labels = {a.case_label for a in store.of_run(BAD, {})}
    assert labels == {item.case_label for item in bad_items}
    assert labels == {f.result(i=0).case.label, f.result(i=1).case.label}

    again = cli("import", str(root), "--json")
    assert json.loads(again.out) == {
        "runs": 2,
        "results_seen": 4,
        "results_added": 0,
        "artifacts_added": 0,
    }
    assert rows(engine) == after


def _append_byte(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"x")


def _replace(make: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        path.unlink()
        make(path)

    return apply


# name -> (what to do to BAD's first trace file, the error after "{that file}: ").
FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "bytes that do not hash to the name": (
        _append_byte,
        "its bytes hash to {sha}, not to its name",
    ),
    "a FIFO": (_replace(lambda p: os.mkfifo(p)), "not a regular file (a FIFO); refused"),
    "a link to /dev/zero": (
        _replace(lambda p: p.symlink_to("/dev/zero")),
        "a symbolic link; refused",
    ),
    "a directory": (_replace(lambda p: p.mkdir()), "not a regular file (a directory); refused"),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_a_bad_file_in_any_run_imports_nothing(  # type: ignore[no-untyped-def]
    cli, engine: Engine, results, before: dict[str, int], fault: str
) -> None:
    root, bad_items = results
    damage, message = FAULTS[fault]
    path = trace_file(root, BAD, bad_items[0])
    damage(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    done = cli("import", str(root))
    assert (done.code, done.out) == (2, ""), done
    assert done.err == f"commitbench: error: {path}: {message.format(sha=sha)}\n"
    assert rows(engine) == before


def test_a_file_over_the_cap_imports_nothing(  # type: ignore[no-untyped-def]
    cli, engine: Engine, results, before: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, bad_items = results
    path = trace_file(root, BAD, bad_items[0])
    big = artifacts.Artifact.of("chrome_trace", "", os.urandom(3000))  # 0.00286 MiB
    path.unlink()
    path = trace_file(root, BAD, big)
    path.write_bytes(big.data)
    monkeypatch.setenv(artifacts.MAX_MIB_ENV, "0.002")  # 2097 bytes; the others are smaller
    done = cli("import", str(root))
    assert (done.code, done.out) == (2, ""), done
    assert done.err == (
        f"commitbench: error: {path}: 0.00286 MiB, over the cap of 0.002 MiB "
        f"({artifacts.MAX_MIB_ENV}); refused\n"
    )
    assert rows(engine) == before
    monkeypatch.setenv(artifacts.MAX_MIB_ENV, "1")  # what the message tells to do
    assert cli("import", str(root)).code == 0
    assert artifacts.SqlArtifacts(engine).load(big.sha256) == big.data


def test_an_artifacts_folder_that_is_a_link_is_refused(  # type: ignore[no-untyped-def]
    cli, engine: Engine, results, before: dict[str, int], tmp_path: Path
) -> None:
    root, _ = results
    folder = root / str(BAD) / artifacts.FOLDER
    folder.rename(tmp_path / "elsewhere")
    folder.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    done = cli("import", str(root))
    assert (done.code, done.out) == (2, ""), done
    assert done.err == f"commitbench: error: {folder}: a symbolic link; refused\n"
    assert rows(engine) == before


def test_a_file_changed_after_the_check_rolls_back_the_results_too(  # type: ignore[no-untyped-def]
    engine: Engine, results, before: dict[str, int]
) -> None:
    """The files are written in the results' transaction: one that fails its second
    check, once the runs' rows are already written, takes them all back with it."""
    root, bad_items = results
    path = trace_file(root, BAD, bad_items[1])
    seen: list[Path] = []

    def change_it(folder: Path) -> None:  # called as each run's rows are written
        seen.append(folder)
        if folder.name == str(BAD):
            _append_byte(path)

    sha = artifacts.Artifact.of("chrome_trace", "", path.read_bytes() + b"x").sha256
    with pytest.raises(CsvFormatError) as raised:
        transfer.import_runs(SqlStore(engine), root, progress=change_it)
    assert str(raised.value) == f"{path}: its bytes hash to {sha}, not to its name"
    assert seen == [root / str(GOOD), root / str(BAD)]
    assert rows(engine) == before
