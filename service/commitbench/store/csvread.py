"""Reading the CSV format back into records, refusing anything damaged with the place
it is in.

The run directory itself (the manifest, each file's checksum, header, row count and
cells) is read and checked by csvmanifest.py; here each row becomes a record, checked
against the records' rules, with the file and line of any bad value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from commitbench.errors import CsvFormatError
from commitbench.model import checks
from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import (
    DeviceSample,
    RecordError,
    ResultRecord,
    RunData,
    RunEnd,
    RunHeader,
    check_samples,
)
from commitbench.model.text import printable
from commitbench.store.csvformat import (
    MANIFEST,
    RESULT_HEADER,
    SAMPLE_HEADER,
    header_from_json,
    metric_header,
    parse_datetime,
)
from commitbench.store.csvmanifest import RunReader


def find_runs(path: Path) -> list[Path]:
    """Run directories at `path`: the path itself if it is one, else its children."""
    path = Path(path)
    if not path.is_dir():
        raise CsvFormatError(f"{path}: no such results directory")
    if _has_manifest(path):
        return [path]
    runs = []
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if _has_manifest(child):
            if child.is_symlink():  # its files would be read from wherever it points
                raise CsvFormatError(f"{child}: a symbolic link to a run directory; refused")
            runs.append(child)
        elif any(child.glob("*.csv")):
            raise CsvFormatError(f"{child}: {MANIFEST} is missing")
    if not runs:
        raise CsvFormatError(f"{path}: no commitbench results (no */{MANIFEST})")
    return runs


def _has_manifest(folder: Path) -> bool:
    # Whatever is there, a link or a FIFO included: reading it says what is wrong with it.
    return os.path.lexists(folder / MANIFEST)


def _float_list(text: str) -> tuple[float, ...]:
    values = json.loads(text)
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise ValueError("not a list of numbers")
    return tuple(float(v) for v in values)


def _int_list(text: str) -> tuple[int, ...]:
    values = json.loads(text)
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise ValueError("not a list of integers")
    return tuple(values)


def _object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    checks.json_value(value, "a JSON object")
    return value


def _samples(r: RunReader, entry: Any) -> Iterator[tuple[int | None, DeviceSample]]:
    floats = (
        "gpu_util_pct",
        "gpu_mem_mib",
        "power_w",
        "sm_clock_mhz",
        "temperature_c",
        "cpu_util_pct",
        "rss_mib",
    )
    for line, row in r.rows(entry, SAMPLE_HEADER):
        time = r.value(line, "time", row["time"], parse_datetime)
        if time is None:
            raise r.fail(f"line {line}: column time is empty")
        values = {c: r.value(line, c, row[c], float) for c in floats}
        sample = DeviceSample(
            time=time,
            gpu_index=r.value(line, "gpu_index", row["gpu_index"], int),
            throttle_reasons=r.value(line, "throttle_reasons", row["throttle_reasons"], int),
            **values,
        )
        try:
            check_samples((sample,))
        except RecordError as exc:
            raise r.fail(f"line {line}: {exc}") from None
        yield r.value(line, "result_key", row["result_key"], int), sample


def _header(r: RunReader) -> tuple[RunHeader, dict[str, Any]]:
    manifest = r.manifest()
    try:
        header = header_from_json(manifest)
    except (KeyError, TypeError, ValueError) as exc:
        raise r.fail(f"bad run header ({exc})") from None
    return header, manifest


def read_header(folder: Path) -> RunHeader:
    """The run header alone, from the manifest: what readers filter runs by before they
    parse any CSV file of the run."""
    return _header(RunReader(Path(folder)))[0]


def read_run(folder: Path) -> RunData:
    """Read and validate one run directory; CsvFormatError on anything wrong."""
    r = RunReader(Path(folder))
    header, manifest = _header(r)
    units = [_read_part(r, part) for part in manifest["parts"]]
    end = None
    if manifest.get("end") is not None:
        raw_end = manifest["end"]
        run_samples = []
        for key, sample in _samples(r, raw_end["device_samples"]):
            if key is not None:
                raise r.fail("run-level samples must not name a result")
            run_samples.append(sample)
        r.where = str(r.folder / MANIFEST)
        try:
            end = RunEnd(
                finished_at=parse_datetime(raw_end["finished_at"]),
                status=raw_end["status"],
                device_samples=tuple(run_samples),
            )
        except ValueError as exc:  # RecordError too
            raise r.fail(f"end: {exc}") from None
        if end.finished_at < header.run.started_at:
            raise r.fail(
                f"end.finished_at {end.finished_at.isoformat()} is before run.started_at "
                f"{header.run.started_at.isoformat()}"
            )
    try:
        return RunData(header=header, units=tuple(units), end=end)
    except RecordError as exc:  # _read_part and the lines above check the same
        raise r.fail(str(exc)) from None


def _metric(r: RunReader, line: int, row: Mapping[str, str]) -> MetricRecord:
    numbers = {
        c: r.value(line, c, row[c], float)
        for c in ("mean", "median", "stddev", "min", "max", "ci_low", "ci_high")
    }
    try:
        return MetricRecord(
            name=row["name"],
            unit=row["unit"],
            direction=row["direction"],
            n=r.value(line, "n", row["n"], int),
            samples=r.value(line, "samples", row["samples"], _float_list),
            properties=r.value(line, "properties", row["properties"], _object) or {},
            processes=r.value(line, "processes", row.get("processes", ""), _int_list),
            **numbers,
        )
    except (RecordError, TypeError) as exc:
        raise r.fail(f"line {line}: {exc}") from None


def _read_part(r: RunReader, part: Mapping[str, Any]) -> tuple[ResultRecord, ...]:
    metrics: dict[int, list[MetricRecord]] = {}
    for line, row in r.rows(part.get("metrics"), metric_header(r.version)):
        key = r.value(line, "result_key", row["result_key"], int)
        metrics.setdefault(key, []).append(_metric(r, line, row))
    samples: dict[int | None, list[DeviceSample]] = {}
    for key, sample in _samples(r, part.get("device_samples")):
        samples.setdefault(key, []).append(sample)
    results = []
    keys = set()
    labels = set()
    for line, row in r.rows(part.get("results"), RESULT_HEADER):
        key = r.value(line, "result_key", row["result_key"], int)
        if key in keys:
            raise r.fail(f"line {line}: column result_key: {key} is used twice")
        keys.add(key)
        try:
            case = CaseKey.of(
                row["case_name"], r.value(line, "case_params", row["case_params"], _object)
            )
            if row["case_label"] not in (case.label, _bare_label(case)):
                raise r.fail(f"line {line}: case_label does not match name and params")
            if case.label in labels:
                raise r.fail(
                    f"line {line}: case {printable(case.label)} is listed twice in this part"
                )
            labels.add(case.label)
            results.append(
                ResultRecord(
                    case=case,
                    status=row["status"],
                    error=row["error"] or None,
                    duration_s=r.value(line, "duration_s", row["duration_s"], float),
                    started_at=r.value(line, "started_at", row["started_at"], parse_datetime),
                    metrics=tuple(metrics.get(key, ())),
                    device_samples=tuple(samples.get(key, ())),
                )
            )
        except RecordError as exc:
            raise r.fail(f"line {line}: {exc}") from None
    dangling = (set(metrics) | set(samples)) - keys
    if dangling:
        raise r.fail(f"rows refer to unknown result_key {sorted(map(str, dangling))[0]}")
    return tuple(results)


def _bare_label(case: CaseKey) -> str:
    """The label as written before string values that read as other values ("1",
    "a,b=c") were quoted (migration 0004 rewrites the database's): still read."""
    if not case.params:
        return case.name
    parts = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in case.params]
    return f"{case.name}[{','.join(parts)}]"


def read_status(folder: Path) -> tuple[RunHeader, str | None]:
    """The run header and its end status (None: not closed), from the manifest alone."""
    r = RunReader(Path(folder))
    header, manifest = _header(r)
    end = manifest.get("end")
    return header, str(end["status"]) if isinstance(end, dict) and "status" in end else None


def read_ok_metrics(
    folder: Path, *, case: str | None = None, metric: str | None = None
) -> Iterator[tuple[str, MetricRecord]]:
    """(case label, metric) of each ok result of the run, reading the results and
    metrics files (checksums verified) and never the device samples. Metrics of other
    results, cases or names are counted but not parsed."""
    r = RunReader(Path(folder))
    _, manifest = _header(r)
    for part in manifest["parts"]:
        wanted: dict[int, str] = {}
        for line, row in r.rows(part.get("results"), RESULT_HEADER):
            if row["status"] == "ok" and case in (None, row["case_label"]):
                wanted[r.value(line, "result_key", row["result_key"], int)] = row["case_label"]
        for line, row in r.rows(part.get("metrics"), metric_header(r.version)):
            if metric not in (None, row["name"]):
                continue
            label = wanted.get(r.value(line, "result_key", row["result_key"], int))
            if label is not None:
                yield label, _metric(r, line, row)


def read_labels(folder: Path) -> tuple[RunHeader, dict[str, str]]:
    """The run header and the label and status of each recorded case, reading only the
    manifest and the results files (checksums verified), not metrics or samples."""
    r = RunReader(Path(folder))
    header, manifest = _header(r)
    labels: dict[str, str] = {}
    for part in manifest["parts"]:
        for _, row in r.rows(part.get("results"), RESULT_HEADER):
            labels[row["case_label"]] = row["status"]
    return header, labels
