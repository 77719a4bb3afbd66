"""Reading the CSV format back, refusing anything damaged with the place it is in.

Files are opened without following a symbolic link and without blocking (a FIFO or a
device in place of a part is refused, not waited on or read forever), and read up to
the limits in csvformat.py (csvfiles.py). The manifest's shape is checked field by field before any
file it names is opened; every text, in a cell or in the manifest, must be one
PostgreSQL can hold, so what reads here imports.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from commitbench.model.text import printable, unstorable
from commitbench.model.words import plural
from commitbench.store.csvfiles import (
    capped_lines,
    read_regular,
    shown,
    storable_json,
)
from commitbench.store.csvformat import (
    CHECKSUM_SINCE,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    MAX_FILE_BYTES,
    MAX_LINE_CHARS,
    MAX_MANIFEST_BYTES,
    READABLE_VERSIONS,
    RESULT_HEADER,
    SAMPLE_HEADER,
    header_from_json,
    manifest_checksum,
    metric_header,
    parse_datetime,
)

# The csv module's own cap on a cell (128 KiB by default, less than a metric of 10,000
# raw samples) is process-wide; it is raised to the line cap, which is enforced here.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_CHARS))

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PART_KEYS = ("results", "metrics", "device_samples")


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


class _Reader:
    """Parses one run directory; every problem becomes a CsvFormatError naming its place."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)
        self.version = FORMAT_VERSION  # the manifest's, once read

    def fail(self, message: str) -> CsvFormatError:
        return CsvFormatError(f"{self.where}: {message}")

    def read(self, path: Path, limit: int) -> bytes:
        self.where = str(path)
        try:
            return read_regular(path, limit)
        except FileNotFoundError:
            raise self.fail("missing") from None
        except ValueError as exc:
            raise self.fail(str(exc)) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self.fail("a symbolic link; refused") from None
            raise self.fail(f"unreadable ({exc.strerror})") from None

    def manifest(self) -> dict[str, Any]:
        raw = self.read(self.folder / MANIFEST, MAX_MANIFEST_BYTES)
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.fail(f"not valid JSON ({exc})") from None
        except RecursionError:
            raise self.fail("not valid JSON (nested too deeply)") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise self.fail(f"not a {FORMAT_NAME} manifest")
        version = data.get("version")
        if type(version) is not int or version not in READABLE_VERSIONS:
            readable = ", ".join(map(str, sorted(READABLE_VERSIONS)))
            raise self.fail(
                f"format version {shown(version)} is not supported (this commitbench reads "
                f"versions {readable})"
            )
        self.version = version
        if version >= CHECKSUM_SINCE:
            found = data.get("checksum")
            try:
                expected = manifest_checksum(data)
            except ValueError:  # NaN or infinity in it: no writer puts them there
                expected = None
            if found != expected:
                raise self.fail(
                    "edited or damaged: its checksum does not match its content"
                    if isinstance(found, str)
                    else "no checksum (a version 2 manifest has one)"
                )
        for key in ("run", "commit", "machine", "parts"):
            if key not in data:
                raise self.fail(f"no {key!r} entry")
        self._shape(data)
        return data

    def _shape(self, data: dict[str, Any]) -> None:
        """The manifest's parts and end are what the readers below walk; every string in
        it is one PostgreSQL can hold."""
        storable_json(data, self.fail)
        if not isinstance(data["parts"], list):
            raise self.fail("parts: expected a list")
        for i, part in enumerate(data["parts"]):
            if not isinstance(part, dict):
                raise self.fail(f"parts[{i}]: expected an object")
            for key in _PART_KEYS:
                self._entry(part.get(key), f"parts[{i}].{key}")  # 0-based, as JSON paths are
        end = data.get("end")
        if end is None:
            return
        if not isinstance(end, dict):
            raise self.fail("end: expected an object or null")
        for key in ("finished_at", "status"):
            if not isinstance(end.get(key), str):
                raise self.fail(f"end.{key}: expected a string")
        self._entry(end.get("device_samples"), "end.device_samples")

    def _entry(self, entry: Any, field: str) -> None:
        if not isinstance(entry, dict) or not {"file", "rows", "sha256"} <= entry.keys():
            raise self.fail(f"{field}: a file entry lacks file, rows or sha256")
        name = entry["file"]
        if (
            not isinstance(name, str)
            or not name
            or "/" in name
            or "\x00" in name
            or name.startswith(".")
            or len(name.encode("utf-8", "surrogatepass")) > 255
        ):
            raise self.fail(f"{field}.file: bad file name {shown(name)}")
        rows = entry["rows"]
        if type(rows) is not int or rows < 0:
            raise self.fail(f"{field}.rows: expected a count, found {shown(rows)}")
        if not isinstance(entry["sha256"], str) or not _SHA256.fullmatch(entry["sha256"]):
            raise self.fail(f"{field}.sha256: not a sha256 hex digest")

    def rows(self, entry: Any, header: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
        # The manifest's shape was checked (_shape): entry is a valid file entry.
        raw = self.read(self.folder / entry["file"], MAX_FILE_BYTES)
        if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
            raise self.fail("truncated or modified (checksum differs from the manifest)")
        try:
            text = raw.decode("utf-8")
            # Cells are searched for what PostgreSQL cannot hold only in a file that has
            # some (a search of the whole text is one fast regex pass).
            suspect = unstorable(text) is not None
            reader = csv.reader(capped_lines(text, MAX_LINE_CHARS))
            found = next(reader, None)
            if found is None or tuple(found) != tuple(header):
                missing = [c for c in header if c not in (found or [])]
                detail = f"missing columns {', '.join(missing)}" if missing else "wrong columns"
                raise self.fail(f"{detail} (expected {','.join(header)})")
            count = 0
            for line, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise self.fail(
                        f"line {line}: {plural(len(row), 'cell')}, expected {len(header)}"
                    )
                count += 1
                cells = dict(zip(header, row, strict=True))
                if suspect:
                    for column, cell in cells.items():
                        bad = unstorable(cell)
                        if bad is not None:
                            raise self.fail(
                                f"line {line}: column {column} holds {bad}, "
                                "which PostgreSQL cannot store"
                            )
                yield line, cells
        except (UnicodeDecodeError, csv.Error, ValueError) as exc:
            raise self.fail(f"unreadable CSV ({exc})") from None
        if count != entry["rows"]:
            raise self.fail(f"{plural(count, 'row')}, the manifest says {entry['rows']}")

    def value(self, line: int, column: str, text: str, parse: Callable[[str], Any]) -> Any:
        if text == "":
            return None
        try:
            return parse(text)
        except RecordError as exc:
            raise self.fail(f"line {line}: column {column}: {exc}") from None
        except (ValueError, TypeError, RecursionError):
            raise self.fail(f"line {line}: column {column}: bad value {text[:40]!r}") from None


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


def _samples(r: _Reader, entry: Any) -> Iterator[tuple[int | None, DeviceSample]]:
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


def _header(r: _Reader) -> tuple[RunHeader, dict[str, Any]]:
    manifest = r.manifest()
    try:
        header = header_from_json(manifest)
    except (KeyError, TypeError, ValueError) as exc:
        raise r.fail(f"bad run header ({exc})") from None
    return header, manifest


def read_header(folder: Path) -> RunHeader:
    """The run header alone, from the manifest: what readers filter runs by before they
    parse any CSV file of the run."""
    return _header(_Reader(Path(folder)))[0]


def read_run(folder: Path) -> RunData:
    """Read and validate one run directory; CsvFormatError on anything wrong."""
    r = _Reader(Path(folder))
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


def _metric(r: _Reader, line: int, row: Mapping[str, str]) -> MetricRecord:
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


def _read_part(r: _Reader, part: Mapping[str, Any]) -> tuple[ResultRecord, ...]:
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
    r = _Reader(Path(folder))
    header, manifest = _header(r)
    end = manifest.get("end")
    return header, str(end["status"]) if isinstance(end, dict) and "status" in end else None


def read_ok_metrics(
    folder: Path, *, case: str | None = None, metric: str | None = None
) -> Iterator[tuple[str, MetricRecord]]:
    """(case label, metric) of each ok result of the run, reading the results and
    metrics files (checksums verified) and never the device samples. Metrics of other
    results, cases or names are counted but not parsed."""
    r = _Reader(Path(folder))
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
    r = _Reader(Path(folder))
    header, manifest = _header(r)
    labels: dict[str, str] = {}
    for part in manifest["parts"]:
        for _, row in r.rows(part.get("results"), RESULT_HEADER):
            labels[row["case_label"]] = row["status"]
    return header, labels
