"""The CSV store (store/csv.py, store/csvread.py), property-tested on real files: any
valid run written and read back is the same run, floats bit for bit, whether written
whole (export) or unit by unit as a recorder writes it, with the run ended or not."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings

from commitbench.model.cases import CaseKey
from commitbench.model.records import RunData
from commitbench.store.csv import MANIFEST, CsvStore, read_run
from commitbench.store.csvread import read_labels
from tests import factories as f
from tests.strategies import bits, runs


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("csv-properties")


@contextmanager
def results_dir(scratch: Path) -> Iterator[Path]:
    """A fresh directory per example (hypothesis runs one test body many times)."""
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        yield Path(folder)


# Every example writes real files with fsync: 30 keeps each test near 10 s on a busy
# machine while still drawing every kind of value many times.
@settings(max_examples=30)
@given(runs)
def test_a_run_exported_and_read_back_is_the_same_run(scratch: Path, data: RunData) -> None:
    with results_dir(scratch) as root:
        folder = CsvStore(root).write_run(data)
        back = read_run(folder)
    assert back == data
    assert bits(back) == bits(data)


@settings(max_examples=30)
@given(runs)
def test_a_run_recorded_unit_by_unit_reads_back_the_same(scratch: Path, data: RunData) -> None:
    """As the recorder writes (and a spooled run is resumed): one part per unit."""
    with results_dir(scratch) as root:
        run_id = data.header.run.id
        store = CsvStore(root)
        store.open_run(data.header)
        for i, unit in enumerate(data.units):
            if i == 1:  # a second process resumes the run
                store = CsvStore(root)
                store.open_run(data.header)
            assert store.write_unit(run_id, unit) == len(unit)
        if data.end is not None:
            assert store.finish_run(run_id, data.end)
        back = read_run(root / str(run_id))
        header, labels = read_labels(root / str(run_id))
    assert bits(back) == bits(data)
    assert header == data.header
    assert set(labels) == {r.case.label for r in data.results}


def test_a_label_written_before_strings_were_quoted_is_still_read(tmp_path: Path) -> None:
    """Results written when `f[n=1]` named {"n": "1"} (see migration 0004)."""
    header = f.header()
    case = CaseKey.of("m.f", {"n": "1", "shape": "4k"})
    store = CsvStore(tmp_path)
    store.open_run(header)
    store.write_unit(header.run.id, [replace(f.result(), case=case)])
    folder = tmp_path / str(header.run.id)
    results = folder / "results-0001.csv"
    old = results.read_bytes().replace(b'"m.f[n=""1"",shape=4k]"', b'"m.f[n=1,shape=4k]"')
    assert old != results.read_bytes()
    results.write_bytes(old)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["parts"][0]["results"]["sha256"] = hashlib.sha256(old).hexdigest()
    # Version 1 metrics had no processes column (the last one, empty here).
    metrics = folder / "metrics-0001.csv"
    lines = metrics.read_bytes().decode().split("\r\n")
    v1 = "\r\n".join(line.rsplit(",", 1)[0] if line else line for line in lines).encode()
    metrics.write_bytes(v1)
    manifest["parts"][0]["metrics"]["sha256"] = hashlib.sha256(v1).hexdigest()
    manifest["version"] = 1  # as the commitbench of those labels wrote it: no checksum
    del manifest["checksum"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    (result,) = read_run(folder).results
    assert (result.case, result.case.label) == (case, 'm.f[n="1",shape=4k]')
