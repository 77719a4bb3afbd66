"""`commitbench import` over damaged, hostile and impossible CSV results, through the real
CLI into the real PostgreSQL, on real files (FIFOs, symbolic links, sparse files).

Every fault ends the same way: exit 2, one line naming the file and the field, and the
database exactly as it was (its row counts compared before and after), although the
directory also holds a good run that is read first."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from commitbench.model.records import ResultRecord
from commitbench.runner.recorder import MetricsRecorder
from commitbench.store import migrate
from commitbench.store.csv import MANIFEST, CsvStore
from commitbench.store.csvformat import (
    MAX_FILE_BYTES,
    MAX_LINE_CHARS,
    MAX_MANIFEST_BYTES,
    manifest_checksum,
    metric_header,
)
from commitbench.store.engine import make_engine
from commitbench.store.sql import SqlStore
from tests import factories as f
from tests.conftest import Outcome

GOOD = uuid.UUID(int=1)  # read first: validation must refuse the bad run before writing it
BAD = uuid.UUID(int=2)
EARLIER = uuid.UUID(int=3)  # imported before each test, so the database is not empty


def record(root: Path, run_id: uuid.UUID, results: list[ResultRecord]) -> Path:
    """A run of a commit of its own (so no run takes another's cases: exactly once)."""
    with MetricsRecorder(CsvStore(root), f.header(run_id, sha=f"{run_id.int:040x}")) as rec:
        for r in results:
            rec.add(r)
    return root / str(run_id)


def load(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / MANIFEST).read_text()))


def save(folder: Path, manifest: dict[str, Any], *, seal: bool = True) -> None:
    """Write the manifest back; sealed with the checksum of its new content, so the check
    under test is reached (unsealed: an edit the checksum must catch)."""
    if seal:
        manifest["checksum"] = manifest_checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def edit_manifest(edit: Callable[[dict[str, Any]], object], *, seal: bool = True) -> Any:
    def apply(folder: Path) -> None:
        manifest = load(folder)
        edit(manifest)
        save(folder, manifest, seal=seal)

    return apply


def set_cell(name: str, line: int, column: str, value: str) -> Callable[[Path], None]:
    """Set one cell of a CSV file (line 2 is the first row) and make the manifest agree
    with the new file, so the value itself is what import meets."""

    def apply(folder: Path) -> None:
        path = folder / name
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode(), newline="")))
        rows[line - 1][rows[0].index(column)] = value
        buf = io.StringIO(newline="")
        csv.writer(buf, lineterminator="\r\n").writerows(rows)
        data = buf.getvalue().encode()
        path.write_bytes(data)
        rehash(folder, name, data)

    return apply


def rehash(folder: Path, name: str, data: bytes) -> None:
    manifest = load(folder)
    entries = [e for p in manifest["parts"] for e in p.values()]
    if manifest["end"]:
        entries.append(manifest["end"]["device_samples"])
    for entry in entries:
        if entry["file"] == name:
            entry["sha256"] = hashlib.sha256(data).hexdigest()
    save(folder, manifest)


def copy_row(name: str, source: int, target: int, *columns: str) -> Callable[[Path], None]:
    """Copy `columns` of line `source` over line `target`'s."""

    def apply(folder: Path) -> None:
        rows = list(csv.reader(io.StringIO((folder / name).read_bytes().decode(), newline="")))
        for column in columns:
            i = rows[0].index(column)
            set_cell(name, target, column, rows[source - 1][i])(folder)

    return apply


def replace_file(name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        (folder / name).unlink()
        make(folder / name)

    return apply


def deep_environment(manifest: dict[str, Any]) -> None:
    manifest["run"]["environment"] = {"deep": "PLACEHOLDER"}


def _nest_deeply(folder: Path) -> None:
    text = (folder / MANIFEST).read_text()
    depth = 100_000
    (folder / MANIFEST).write_text(text.replace('"PLACEHOLDER"', "[" * depth + "]" * depth))


LABEL = "matmul.matmul[i=0,impl=fp16,shape=4k]"

# name -> (what to do to the bad run's directory, the error after "{bad run dir}/").
FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    # -- item 2: text, integers, duplicates, order, types --------------------------------
    "NUL in a text cell": (
        set_cell("metrics-0001.csv", 2, "unit", "s\x00"),
        "metrics-0001.csv: line 2: column unit holds U+0000, which PostgreSQL cannot store",
    ),
    "NUL escaped in a JSON cell": (
        set_cell("results-0001.csv", 2, "case_params", '{"i":0,"impl":"fp16\\u0000","shape":"4k"}'),
        "results-0001.csv: line 2: column case_params: a JSON object holds U+0000, which "
        "PostgreSQL cannot store",
    ),
    "NUL in the manifest": (
        edit_manifest(lambda m: m["commit"].update(subject="fix\x00")),
        "manifest.json: commit.subject holds U+0000, which PostgreSQL cannot store",
    ),
    "n = 2^31": (
        set_cell("metrics-0001.csv", 2, "n", str(2**31)),
        "metrics-0001.csv: line 2: metric time: n 2147483648 is out of range "
        "(-2147483648..2147483647)",
    ),
    "gpu_index 40000": (
        set_cell("device_samples-0001.csv", 2, "gpu_index", "40000"),
        "device_samples-0001.csv: line 2: device sample gpu_index 40000 is out of range (0..32767)",
    ),
    "throttle_reasons 2^63": (
        set_cell("device_samples-0001.csv", 3, "throttle_reasons", str(2**63)),
        "device_samples-0001.csv: line 3: device sample throttle_reasons 9223372036854775808 "
        "is out of range (0..9223372036854775807)",
    ),
    "cpu_count 2^31 in the manifest": (
        edit_manifest(lambda m: m["machine"].update(cpu_count=2**31)),
        "manifest.json: bad run header (cpu_count 2147483648 is out of range (0..2147483647))",
    ),
    "the same case twice in a unit": (
        copy_row("results-0001.csv", 2, 3, "case_params", "case_label"),
        f"results-0001.csv: line 3: case {LABEL} is listed twice in this part",
    ),
    "a result key used twice": (
        set_cell("results-0001.csv", 3, "result_key", "0"),
        "results-0001.csv: line 3: column result_key: 0 is used twice",
    ),
    "finished_at before started_at": (
        edit_manifest(lambda m: m["end"].update(finished_at="2026-10-01T00:00:00+00:00")),
        "manifest.json: end.finished_at 2026-10-01T00:00:00+00:00 is before run.started_at "
        "2026-11-01T12:00:00.123456+00:00",
    ),
    "a number for the subject": (
        edit_manifest(lambda m: m["commit"].update(subject=5)),
        "manifest.json: bad run header (commit.subject: expected a string, found a number)",
    ),
    "a string for gpu_count": (
        edit_manifest(lambda m: m["machine"].update(gpu_count="1")),
        "manifest.json: bad run header (machine.gpu_count: expected an integer, found a string)",
    ),
    "true for gpu_count": (
        edit_manifest(lambda m: m["machine"].update(gpu_count=True)),
        "manifest.json: bad run header (machine.gpu_count: expected an integer, found a boolean)",
    ),
    "a list for the environment": (
        edit_manifest(lambda m: m["run"].update(environment=[1])),
        "manifest.json: bad run header (run.environment: expected an object, found a list)",
    ),
    "a list for properties": (
        set_cell("metrics-0001.csv", 2, "properties", "[1]"),
        "metrics-0001.csv: line 2: column properties: bad value '[1]'",
    ),
    "strings for samples": (
        set_cell("metrics-0001.csv", 2, "samples", '["1"]'),
        "metrics-0001.csv: line 2: column samples: bad value '[\"1\"]'",
    ),
    "an object for a parameter": (
        set_cell("results-0001.csv", 2, "case_params", '{"i":{"a":1}}'),
        "results-0001.csv: line 2: case matmul.matmul: param i is not a scalar",
    ),
    # -- item 2: malformed manifests ------------------------------------------------------
    "end as a number": (
        edit_manifest(lambda m: m.update(end=5)),
        "manifest.json: end: expected an object or null",
    ),
    "parts: null": (
        edit_manifest(lambda m: m.update(parts=None)),
        "manifest.json: parts: expected a list",
    ),
    "a part that is a string": (
        edit_manifest(lambda m: m["parts"].append("x")),
        "manifest.json: parts[1]: expected an object",
    ),
    "an empty file name": (
        edit_manifest(lambda m: m["parts"][0]["metrics"].update(file="")),
        "manifest.json: parts[0].metrics.file: bad file name ''",
    ),
    "a file name holding NUL": (
        edit_manifest(lambda m: m["parts"][0]["metrics"].update(file="a\x00b.csv")),
        "manifest.json: parts[0].metrics.file holds U+0000, which PostgreSQL cannot store",
    ),
    "a file name that leaves the directory": (
        edit_manifest(lambda m: m["parts"][0]["metrics"].update(file="../x.csv")),
        "manifest.json: parts[0].metrics.file: bad file name '../x.csv'",
    ),
    "rows as a string": (
        edit_manifest(lambda m: m["parts"][0]["metrics"].update(rows="3")),
        "manifest.json: parts[0].metrics.rows: expected a count, found '3'",
    ),
    "a 100,000-deep JSON": (
        lambda d: (edit_manifest(deep_environment)(d), _nest_deeply(d)),
        "manifest.json: not valid JSON (nested too deeply)",
    ),
    "version true": (
        edit_manifest(lambda m: m.update(version=True)),
        "manifest.json: format version True is not supported (this commitbench reads "
        "versions 1, 2, 3)",
    ),
    # -- item 2: files that are not files -------------------------------------------------
    "a FIFO in place of a part": (
        replace_file("metrics-0001.csv", lambda p: os.mkfifo(p)),
        "metrics-0001.csv: not a regular file (a FIFO); refused",
    ),
    "a FIFO in place of the manifest": (
        replace_file(MANIFEST, lambda p: os.mkfifo(p)),
        "manifest.json: not a regular file (a FIFO); refused",
    ),
    "a symlink to /dev/zero": (
        replace_file("device_samples-0001.csv", lambda p: p.symlink_to("/dev/zero")),
        "device_samples-0001.csv: a symbolic link; refused",
    ),
    "a symlink to a good copy": (
        lambda d: (
            (d / "results-0001.csv").rename(d / "elsewhere"),
            (d / "results-0001.csv").symlink_to(d / "elsewhere"),
        ),
        "results-0001.csv: a symbolic link; refused",
    ),
    "a directory in place of a part": (
        replace_file("results-0001.csv", lambda p: p.mkdir()),
        "results-0001.csv: not a regular file (a directory); refused",
    ),
    "a file over the size cap": (
        replace_file("metrics-0001.csv", lambda p: os.truncate(_touch(p), MAX_FILE_BYTES + 1)),
        "metrics-0001.csv: larger than the 1024 MiB a reader takes; refused",
    ),
    "a line over the line cap": (
        set_cell("metrics-0001.csv", 2, "unit", "s" * (MAX_LINE_CHARS + 1)),
        "metrics-0001.csv: unreadable CSV (a line is over 16 Mi characters)",
    ),
    "a manifest over its cap": (
        edit_manifest(lambda m: m["run"]["environment"].update(pad="x" * MAX_MANIFEST_BYTES)),
        "manifest.json: larger than the 16 MiB a reader takes; refused",
    ),
    # -- item 3: values that are not measurements ----------------------------------------
    "NaN in a statistic": (
        set_cell("metrics-0001.csv", 2, "median", "nan"),
        "metrics-0001.csv: line 2: metric time: median is nan, not a measurement",
    ),
    "inf in a statistic": (
        set_cell("metrics-0001.csv", 2, "mean", "1e999"),
        "metrics-0001.csv: line 2: metric time: mean is inf, not a measurement",
    ),
    "-inf in the samples": (
        set_cell("metrics-0001.csv", 3, "samples", "[700.0, -Infinity]"),
        "metrics-0001.csv: line 3: metric tflops: sample 2 is -inf, not a measurement",
    ),
    "NaN in the samples": (
        set_cell("metrics-0001.csv", 4, "samples", "[NaN]"),
        "metrics-0001.csv: line 4: metric peak_mem: sample 1 is nan, not a measurement",
    ),
    "a negative duration": (
        set_cell("results-0001.csv", 2, "duration_s", "-1.5"),
        f"results-0001.csv: line 2: {LABEL}: duration_s is negative (-1.5)",
    ),
    "an infinite duration": (
        set_cell("results-0001.csv", 2, "duration_s", "inf"),
        f"results-0001.csv: line 2: {LABEL}: duration_s is inf, not a measurement",
    ),
    "CPU % below 0": (
        set_cell("device_samples-0001.csv", 2, "cpu_util_pct", "-0.5"),
        "device_samples-0001.csv: line 2: device sample cpu_util_pct is negative (-0.5)",
    ),
    "RSS below 0": (
        set_cell("device_samples-0001.csv", 2, "rss_mib", "-1"),
        "device_samples-0001.csv: line 2: device sample rss_mib is negative (-1.0)",
    ),
    "NaN power": (
        set_cell("device_samples-0001.csv", 4, "power_w", "nan"),
        "device_samples-0001.csv: line 4: device sample power_w is nan, not a measurement",
    ),
    "a time in year 1 at +14:00": (
        set_cell("results-0001.csv", 2, "started_at", "0001-01-01T00:00:00+14:00"),
        f"results-0001.csv: line 2: {LABEL}: started_at 0001-01-01T00:00:00+14:00 is outside "
        "1970..2199",
    ),
    "a sample time in 2200": (
        set_cell("device_samples-0001.csv", 2, "time", "2200-01-01T00:00:00+00:00"),
        "device_samples-0001.csv: line 2: device sample time 2200-01-01T00:00:00+00:00 is "
        "outside 1970..2199",
    ),
    "a commit time before 1970": (
        edit_manifest(lambda m: m["commit"].update(committed_at="1969-12-31T23:59:59+00:00")),
        "manifest.json: bad run header (committed_at 1969-12-31T23:59:59+00:00 is outside "
        "1970..2199)",
    ),
    # -- item 3: the manifest's own checksum ---------------------------------------------
    **{
        f"an edited {what}": (
            edit_manifest(edit, seal=False),
            "manifest.json: edited or damaged: its checksum does not match its content",
        )
        for what, edit in {
            "commit sha": lambda m: m["commit"].update(sha="c" * 40),
            "subject": lambda m: m["commit"].update(subject="Slow down the fused kernel"),
            "profile": lambda m: m["run"].update(profile="smoke"),
            "run id": lambda m: m["run"].update(id=str(uuid.UUID(int=9))),
        }.items()
    },
    "a removed checksum": (
        lambda d: save(d, {k: v for k, v in load(d).items() if k != "checksum"}, seal=False),
        "manifest.json: no checksum (a version 2 manifest has one)",
    ),
}


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results directory of two runs, each of one unit of two cases: GOOD, and BAD
    (to be damaged)."""
    root = tmp_path / "results"
    for run_id in (GOOD, BAD):
        record(root, run_id, [f.result(i=0), f.result(i=1)])
    return root


@pytest.fixture
def before(cli, db_env: str, engine: Engine, tmp_path: Path) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The database holds one run (and its machine, commit and cases) already."""
    record(tmp_path / "earlier", EARLIER, [f.result(i=0)])
    assert cli("import", str(tmp_path / "earlier")).code == 0
    counts = SqlStore(engine).counts()
    assert counts == {
        "machines": 1,
        "commits": 1,
        "runs": 1,
        "cases": 1,
        "results": 1,
        "metrics": 3,
        "device_samples": 6,
    }
    return counts


def refused_in_one_line(outcome: Outcome, expected: str) -> None:
    assert (outcome.code, outcome.out) == (2, ""), outcome
    assert outcome.err == f"commitbench: error: {expected}\n"


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_a_fault_in_any_run_imports_nothing(  # type: ignore[no-untyped-def]
    cli, engine: Engine, results: Path, before: dict[str, int], fault: str
) -> None:
    damage, message = FAULTS[fault]
    damage(results / str(BAD))
    refused_in_one_line(cli("import", str(results)), f"{results / str(BAD)}/{message}")
    assert SqlStore(engine).counts() == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: os.mkfifo(p), "not a regular file (a FIFO); refused"),
        (lambda p: p.symlink_to("/dev/zero"), "a symbolic link; refused"),
    ],
    ids=["fifo", "dev-zero"],
)
def test_a_part_that_never_ends_is_refused_at_once_by_the_real_command(
    db_env: str, engine: Engine, results: Path, make: Callable[[Path], None], message: str
) -> None:
    """The command itself, as a user runs it: neither waits on a FIFO nobody writes nor
    reads /dev/zero until memory runs out (a hang fails this test by its timeout)."""
    part = results / str(BAD) / "device_samples-0001.csv"
    part.unlink()
    make(part)
    before = SqlStore(engine).counts()
    done = subprocess.run(
        [sys.executable, "-m", "commitbench", "import", str(results)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"commitbench: error: {part}: {message}\n"
    assert SqlStore(engine).counts() == before


def test_a_run_directory_that_is_a_symlink_is_refused(  # type: ignore[no-untyped-def]
    cli, engine: Engine, results: Path, before: dict[str, int], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    (results / str(BAD)).rename(elsewhere)
    (results / str(BAD)).symlink_to(elsewhere, target_is_directory=True)
    refused_in_one_line(
        cli("import", str(results)),
        f"{results / str(BAD)}: a symbolic link to a run directory; refused",
    )
    assert SqlStore(engine).counts() == before


def test_the_good_runs_import_in_one_transaction_once_the_fault_is_gone(  # type: ignore[no-untyped-def]
    cli, engine: Engine, results: Path, before: dict[str, int]
) -> None:
    set_cell("metrics-0001.csv", 2, "n", str(2**31))(results / str(BAD))
    assert cli("import", str(results)).code == 2
    assert SqlStore(engine).counts() == before
    shutil.rmtree(results / str(BAD))
    done = cli("import", str(results))
    assert (done.code, done.out) == (0, "imported 1 run: 2 new results (0 already present)\n")
    after = SqlStore(engine).counts()
    assert (after["runs"], after["results"], after["cases"]) == (2, 3, 2)


def test_a_version_1_directory_is_still_read(  # type: ignore[no-untyped-def]
    cli, engine: Engine, results: Path, before: dict[str, int]
) -> None:
    """Written before the manifest had a checksum (and before metrics had a `processes`
    column, version 3): nothing to check, all else checked."""
    for run_id in (GOOD, BAD):
        folder = results / str(run_id)
        manifest = load(folder)
        for part in manifest["parts"]:
            path = folder / part["metrics"]["file"]
            with path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
            with path.open("w", newline="") as fh:
                out = csv.DictWriter(fh, fieldnames=metric_header(1), extrasaction="ignore")
                out.writeheader()
                out.writerows(rows)
            part["metrics"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest["version"] = 1
        del manifest["checksum"]
        save(folder, manifest, seal=False)
    done = cli("import", str(results))
    assert (done.code, done.out) == (0, "imported 2 runs: 4 new results (0 already present)\n")
    assert SqlStore(engine).counts()["runs"] == 3


def test_a_row_the_database_refuses_after_all_rolls_back_every_run(  # type: ignore[no-untyped-def]
    cli, fresh_url: URL, results: Path
) -> None:
    """The one transaction, shown with a database stricter than the records (a CHECK
    this test adds): GOOD is written first, BAD's results are refused, and GOOD goes too."""
    engine = make_engine(fresh_url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE results ADD CONSTRAINT strict CHECK (duration_s < 100)"))
        shutil.rmtree(results / str(BAD))
        record(results, BAD, [f.result(i=0), dataclasses.replace(f.result(i=1), duration_s=150.0)])
        url = fresh_url.render_as_string(hide_password=False)
        done = cli("import", str(results), "--db", url, "--json")  # --json: no progress lines
        refused_in_one_line(
            done,
            f'{results / str(BAD)}: refused by the database (new row for relation "results" '
            'violates check constraint "strict"); nothing was imported',
        )
        assert set(SqlStore(engine).counts().values()) == {0}
    finally:
        engine.dispose()
