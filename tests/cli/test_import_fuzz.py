"""`commitbench import` fuzzed (hypothesis) over mutated manifests and CSV cells, through
the real CLI into the real PostgreSQL: every outcome is a clean import (exit 0, the rows
it says it added and no others) or exit 2 with one line naming the run directory, and
the database untouched.

Seeded and bounded: the profile in tests/conftest.py derandomizes hypothesis (the same
examples on every run and machine, no example database), and each test draws 60
examples, about 10 s on the 2-core development machine.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from commitbench.runner.recorder import MetricsRecorder
from commitbench.store.csv import MANIFEST, CsvStore
from commitbench.store.csvformat import manifest_checksum
from commitbench.store.sql import SqlStore
from tests import factories as f
from tests.conftest import Outcome

FUZZ = settings(
    max_examples=60,
    # One database and one template for all examples; each example copies the template
    # into a fresh directory and gives its run a fresh id, so examples do not share rows.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Values a damaged or hostile manifest might hold where anything else was expected.
SPECIAL_TEXT = [
    "",
    "\x00",
    "a\x00b",
    "../x.csv",
    ".hidden",
    "manifest.json",
    "results-0001.csv",
    "0001-01-01T00:00:00+14:00",
    "2200-01-01T00:00:00+00:00",
    "1969-12-31T23:59:59+00:00",
    "2026-11-01T12:00:00",
    "not a time",
    "x" * 300,
    "ok",
    "failed",
    "smoke",
    "lower",
    "0" * 64,
    "a" * 40,
]
SPECIAL_NUMBERS = [0, -1, 1, 40000, 2**31, 2**63, -(2**63) - 1, 10**30]
leaves = (
    st.none()
    | st.booleans()
    | st.sampled_from(SPECIAL_NUMBERS)
    | st.integers()
    | st.floats()  # NaN and infinities included: json.dumps writes them as NaN, Infinity
    | st.sampled_from(SPECIAL_TEXT)
    | st.text(max_size=8)
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

SPECIAL_CELLS = [
    "",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e999",
    "-1",
    "-0.0",
    "2147483648",
    "40000",
    "9223372036854775808",
    "true",
    "0001-01-01T00:00:00+14:00",
    "2200-01-01T00:00:00+00:00",
    "2026-11-01T12:00:00",
    "\x00",
    '{"a":',
    "{}",
    "[]",
    "[NaN]",
    "[1e999]",
    '["1"]',
    '{"x":"\\u0000"}',
    '{"n":{"a":1}}',
    "matmul.matmul",
    "ok",
    "crashed",
    "higher",
]
cells = (
    st.sampled_from(SPECIAL_CELLS)
    | st.text(max_size=12)
    | st.integers().map(str)
    | st.floats().map(repr)
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One recorded run directory: a unit of two results with metrics and samples."""
    root = tmp_path_factory.mktemp("fuzz-template")
    header = f.header()
    with MetricsRecorder(CsvStore(root), header) as rec:
        rec.add(f.result(i=0))
        rec.add(f.result(i=1))
    return root / str(header.run.id)


@contextmanager
def fresh_copy(template: Path) -> Iterator[Path]:
    """The template under a new run id, in a directory of its own."""
    with tempfile.TemporaryDirectory(dir=template.parent) as scratch:
        run_id = str(uuid.uuid4())
        folder = Path(scratch) / run_id
        shutil.copytree(template, folder)
        manifest = load(folder)
        manifest["run"]["id"] = run_id
        save(folder, manifest)
        yield folder


def load(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / MANIFEST).read_text()))


def save(folder: Path, manifest: dict[str, Any], *, seal: bool = True) -> None:
    if seal:
        # NaN in it: no checksum can be computed, the old one stays (and does not match).
        with contextlib.suppress(ValueError):
            manifest["checksum"] = manifest_checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document, as the keys and indexes leading to it."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, inner in items:
        yield (*prefix, key)
        yield from paths(inner, (*prefix, key))


def mutate(manifest: dict[str, Any], where: tuple[Any, ...], new: Any, delete: bool) -> None:
    parent: Any = manifest
    for key in where[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = new


def import_json(cli: Any, folder: Path) -> Outcome:
    return cli("import", str(folder), "--json")  # type: ignore[no-any-return]


def clean_or_refused(  # DEBUG
    outcome: Outcome, folder: Path, before: dict[str, int], after: dict[str, int]
) -> None:
    import sys

    print(
        "OUTCOME",
        outcome.code,
        outcome.err.split(str(folder))[-1][:110].strip(),
        file=sys.__stderr__,
    )
    if outcome.code == 0:
        summary = json.loads(outcome.out)
        assert outcome.err == ""
        assert summary["runs"] == 1
        assert after["results"] == before["results"] + summary["results_added"]
        assert after["runs"] - before["runs"] in (0, 1)
        return
    assert (outcome.code, outcome.out) == (2, ""), outcome
    assert outcome.err.startswith(f"commitbench: error: {folder}")
    assert outcome.err.endswith("\n") and outcome.err.count("\n") == 1, outcome.err
    assert "Traceback" not in outcome.err
    assert after == before


@FUZZ
@given(data=st.data())
def test_mutated_manifests_import_cleanly_or_not_at_all(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, template: Path, data: st.DataObject
) -> None:
    with fresh_copy(template) as folder:
        manifest = load(folder)
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            # The checksum is left alone (resealed or not below): edits must reach the
            # rest of the reader, not stop at the seal.
            places = sorted((p for p in paths(manifest) if p != ("checksum",)), key=repr)
            if not places:
                break
            where = data.draw(st.sampled_from(places), label="where")
            mutate(
                manifest,
                where,
                data.draw(json_values, label="value"),
                data.draw(st.booleans(), label="delete"),
            )
        save(folder, manifest, seal=data.draw(st.sampled_from([True] * 4 + [False]), label="seal"))
        before = SqlStore(engine).counts()
        outcome = import_json(cli, folder)
        clean_or_refused(outcome, folder, before, SqlStore(engine).counts())


@FUZZ
@given(data=st.data())
def test_mutated_csv_cells_import_cleanly_or_not_at_all(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, template: Path, data: st.DataObject
) -> None:
    with fresh_copy(template) as folder:
        manifest = load(folder)
        name = data.draw(
            st.sampled_from(["results-0001.csv", "metrics-0001.csv", "device_samples-0001.csv"]),
            label="file",
        )
        path = folder / name
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode(), newline="")))
        for _ in range(data.draw(st.integers(1, 3), label="cells")):
            row = data.draw(st.integers(1, len(rows) - 1), label="row")
            column = data.draw(st.integers(0, len(rows[0]) - 1), label="column")
            rows[row][column] = data.draw(cells, label="cell")
        buf = io.StringIO(newline="")
        csv.writer(buf, lineterminator="\r\n").writerows(rows)
        raw = buf.getvalue().encode("utf-8", "surrogatepass")
        path.write_bytes(raw)
        for part in manifest["parts"]:
            for entry in part.values():
                if entry["file"] == name:
                    entry["sha256"] = hashlib.sha256(raw).hexdigest()
        save(folder, manifest)
        before = SqlStore(engine).counts()
        outcome = import_json(cli, folder)
        clean_or_refused(outcome, folder, before, SqlStore(engine).counts())
