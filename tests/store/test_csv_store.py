"""CSV store: exact round trips, atomic parts, and refusal of anything damaged."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from commitbench.errors import CsvFormatError
from commitbench.model.records import RunHeader
from commitbench.runner.recorder import MetricsRecorder
from commitbench.store.csv import MANIFEST, CsvStore, find_runs, read_run
from commitbench.store.csvformat import manifest_checksum
from tests import factories as f


def write(root: Path, header: RunHeader | None = None) -> tuple[RunHeader, Path]:
    header = header or f.header()
    with MetricsRecorder(CsvStore(root), header) as rec:
        for i in range(3):
            rec.add(f.result(i=i, status="oom" if i == 2 else "ok"))
            rec.flush()
        rec.add_run_samples(f.samples(2, gpus=1))
    return header, root / str(header.run.id)


def test_run_round_trips_bit_for_bit(tmp_path: Path) -> None:
    header, folder = write(tmp_path)
    data = read_run(folder)
    assert data.header == header
    assert data.results == tuple(f.result(i=i, status="oom" if i == 2 else "ok") for i in range(3))
    assert len(data.units) == 3
    assert data.end is not None and data.end.status == "ok"  # an oom case does not fail a run
    assert data.end.device_samples == f.samples(2, gpus=1)


def test_manifest_names_format_and_version(tmp_path: Path) -> None:
    _, folder = write(tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert (manifest["format"], manifest["version"]) == ("commitbench-csv", 3)
    assert manifest["checksum"] == manifest_checksum(manifest)
    assert [p["results"]["rows"] for p in manifest["parts"]] == [1, 1, 1]
    assert manifest["parts"][0]["metrics"]["rows"] == 3
    assert manifest["parts"][0]["device_samples"]["rows"] == 6
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MANIFEST, "run_samples.csv"]
        + [f"{k}-000{i}.csv" for k in ("results", "metrics", "device_samples") for i in (1, 2, 3)]
    )


def test_part_without_manifest_entry_is_ignored(tmp_path: Path) -> None:
    """A process killed between writing a part and the manifest leaves a stray file."""
    _, folder = write(tmp_path)
    (folder / "results-0004.csv").write_text("garbage from a dead process\n")
    assert len(read_run(folder).results) == 3


def test_resuming_a_spooled_run_appends_parts(tmp_path: Path) -> None:
    header = f.header()
    store = CsvStore(tmp_path)
    store.open_run(header)
    store.write_unit(header.run.id, [f.result(i=0)])
    again = CsvStore(tmp_path)
    again.open_run(header)
    again.write_unit(header.run.id, [f.result(i=1)])
    assert [r.case.params_dict["i"] for r in read_run(tmp_path / str(header.run.id)).results] == [
        0,
        1,
    ]


def test_a_version_1_run_resumed_stays_version_1_and_reads(tmp_path: Path) -> None:
    """A run spooled by a commitbench that wrote version 1, resumed by this one: its
    parts are of version 1, so its manifest stays version 1 (no checksum)."""
    header = f.header()
    store = CsvStore(tmp_path)
    store.open_run(header)
    store.write_unit(header.run.id, [f.result(i=0)])
    folder = tmp_path / str(header.run.id)
    _drop_processes(folder, "metrics-0001.csv")  # as version 1 wrote its metrics
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["version"] = 1
    del manifest["checksum"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    again = CsvStore(tmp_path)
    again.open_run(header)
    again.write_unit(header.run.id, [f.result(i=1)])
    resumed = json.loads((folder / MANIFEST).read_text())
    assert (resumed["version"], "checksum" in resumed) == (1, False)
    assert [r.case.params_dict["i"] for r in read_run(folder).results] == [0, 1]


def test_find_runs_accepts_a_results_dir_or_a_run_dir(tmp_path: Path) -> None:
    _, one = write(tmp_path)
    _, two = write(tmp_path)
    assert find_runs(tmp_path) == sorted([one, two])
    assert find_runs(one) == [one]


def _drop_processes(folder: Path, name: str) -> None:
    """The metrics file without its last column, `processes` (versions 1 and 2)."""
    lines = (folder / name).read_bytes().decode().split("\r\n")
    (folder / name).write_bytes(
        "\r\n".join(line.rsplit(",", 1)[0] if line else line for line in lines).encode()
    )
    manifest = json.loads((folder / MANIFEST).read_text())
    for part in manifest["parts"]:
        for entry in part.values():
            if entry["file"] == name:
                entry["sha256"] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _edit(path: Path, old: str, new: str) -> None:
    # Bytes, not read_text(): that would turn the files' CRLF line ends into LF.
    path.write_bytes(path.read_bytes().decode().replace(old, new, 1).encode())


def _rehash(folder: Path, name: str) -> None:
    """Make the manifest agree with an edited file, so the content check is reached."""
    import hashlib

    manifest = json.loads((folder / MANIFEST).read_text())
    data = (folder / name).read_bytes()
    for part in manifest["parts"]:
        for entry in part.values():
            if entry["file"] == name:
                entry["sha256"] = hashlib.sha256(data).hexdigest()
    manifest["checksum"] = manifest_checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _reseal(folder: Path) -> None:
    """Give an edited manifest the checksum of its new content."""
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["checksum"] = manifest_checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


BAD_INPUTS = {
    "missing file": (
        lambda d: (d / "metrics-0002.csv").unlink(),
        r"metrics-0002.csv: missing$",
    ),
    "missing manifest": (
        lambda d: (d / MANIFEST).unlink(),
        r"manifest.json is missing$",
    ),
    "wrong format version": (
        lambda d: _edit(d / MANIFEST, '"version": 3', '"version": 7'),
        r"format version 7 is not supported \(this commitbench reads versions 1, 2, 3\)",
    ),
    "truncated file": (
        lambda d: (d / "device_samples-0001.csv").write_bytes(
            (d / "device_samples-0001.csv").read_bytes()[:-40]
        ),
        r"device_samples-0001.csv: truncated or modified",
    ),
    "missing column": (
        lambda d: (
            _edit(d / "results-0001.csv", ",duration_s,", ","),
            _rehash(d, "results-0001.csv"),
        ),
        r"results-0001.csv: missing columns duration_s",
    ),
    "non-numeric value": (
        lambda d: (
            _edit(d / "results-0001.csv", ",1.25,", ",fast,"),
            _rehash(d, "results-0001.csv"),
        ),
        r"results-0001.csv: line 2: column duration_s: bad value 'fast'",
    ),
    "manifest not JSON": (
        lambda d: (d / MANIFEST).write_text("{not json"),
        r"manifest.json: not valid JSON",
    ),
    "row count differs": (
        lambda d: (
            _edit(
                d / "metrics-0001.csv",
                "\n",
                "\n",
            ),
            _edit(d / MANIFEST, '"rows": 3', '"rows": 4'),
            _reseal(d),
        ),
        r"metrics-0001.csv: 3 rows, the manifest says 4",
    ),
}


@pytest.mark.parametrize("damage", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_damaged_results_are_refused_with_their_place(tmp_path: Path, damage: str) -> None:
    _, folder = write(tmp_path)
    corrupt, message = BAD_INPUTS[damage]
    corrupt(folder)
    with pytest.raises(CsvFormatError, match=message):
        for run in find_runs(tmp_path):
            read_run(run)


def test_export_overwrites_an_earlier_copy(tmp_path: Path) -> None:
    header, folder = write(tmp_path / "a")
    data = read_run(folder)
    out = CsvStore(tmp_path / "b")
    (tmp_path / "b").mkdir()
    first = out.write_run(data)
    second = out.write_run(data)
    assert first == second == tmp_path / "b" / str(header.run.id)
    assert read_run(second).results == data.results
    assert [p.name for p in (tmp_path / "b").iterdir()] == [str(header.run.id)]
    assert uuid.UUID(second.name) == header.run.id


def test_recorded_cases_by_commit_machine_and_profile(tmp_path: Path) -> None:
    from commitbench.model.records import RecordedKey

    header, _ = write(tmp_path)
    other_machine = f.header(gpu=None)
    with MetricsRecorder(CsvStore(tmp_path), other_machine) as rec:
        rec.add(f.result(i=7))
    store = CsvStore(tmp_path)
    assert store.recorded(RecordedKey.of(header)) == {
        "matmul.matmul[i=0,impl=fp16,shape=4k]": "ok",
        "matmul.matmul[i=1,impl=fp16,shape=4k]": "ok",
        "matmul.matmul[i=2,impl=fp16,shape=4k]": "oom",
    }
    assert store.recorded(RecordedKey.of(other_machine)) == {
        "matmul.matmul[i=7,impl=fp16,shape=4k]": "ok"
    }
    other_sha = f.header(sha=f.SHA_B)
    assert store.recorded(RecordedKey.of(other_sha)) == {}
    # The latest run's status wins, whatever the order of the run directories' names.
    for minutes, status in ((2, "crashed"), (1, "ok")):
        later = f.header()
        later = dataclasses.replace(
            later, run=dataclasses.replace(later.run, started_at=f.T0 + timedelta(minutes=minutes))
        )
        with MetricsRecorder(CsvStore(tmp_path), later) as rec:
            rec.add(f.result(i=1, status=status))
    assert store.recorded(RecordedKey.of(header))["matmul.matmul[i=1,impl=fp16,shape=4k]"] == (
        "crashed"
    )
    # A damaged run elsewhere does not hide the others.
    (tmp_path / str(other_machine.run.id) / "results-0001.csv").write_text("x\n")
    assert len(store.recorded(RecordedKey.of(header))) == 3
    assert store.recorded(RecordedKey.of(other_machine)) == {}


def test_each_sample_keeps_its_process(tmp_path: Path) -> None:
    time = f.result(i=0).metrics[0]
    split = dataclasses.replace(time, processes=tuple(k // 5 for k in range(time.n)))
    result = dataclasses.replace(f.result(i=0), metrics=(split, *f.result(i=0).metrics[1:]))
    header = f.header()
    with MetricsRecorder(CsvStore(tmp_path), header) as rec:
        rec.add(result)
    assert read_run(tmp_path / str(header.run.id)).results == (result,)


def test_a_version_1_run_reads_as_one_process_per_result(tmp_path: Path) -> None:
    """Written before the processes column: the same run, read as one process each."""
    _, folder = write(tmp_path)
    for seq in (1, 2, 3):
        name = f"metrics-000{seq}.csv"
        lines = (folder / name).read_bytes().decode().split("\r\n")
        (folder / name).write_bytes(
            "\r\n".join(line.rsplit(",", 1)[0] if line else line for line in lines).encode()
        )
        _rehash(folder, name)
    _edit(folder / MANIFEST, '"version": 3', '"version": 1')
    data = read_run(folder)
    assert data.results == tuple(f.result(i=i, status="oom" if i == 2 else "ok") for i in range(3))
    assert all(m.processes is None for r in data.results for m in r.metrics)
