"""Reading the CSV format back, refusing anything damaged with the place it is in."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from commitbench.errors import CsvFormatError
from commitbench.model.records import (
    CaseKey,
    DeviceSample,
    MetricRecord,
    RecordError,
    ResultRecord,
    RunData,
    RunEnd,
    RunHeader,
)
from commitbench.model.words import plural
from commitbench.store.csvformat import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    READABLE_VERSIONS,
    RESULT_HEADER,
    SAMPLE_HEADER,
    header_from_json,
    metric_header,
    parse_datetime,
)


def find_runs(path: Path) -> list[Path]:
    """Run directories at `path`: the path itself if it is one, else its children."""
    path = Path(path)
    if not path.is_dir():
        raise CsvFormatError(f"{path}: no such results directory")
    if (path / MANIFEST).is_file():
        return [path]
    runs = []
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (child / MANIFEST).is_file():
            runs.append(child)
        elif any(child.glob("*.csv")):
            raise CsvFormatError(f"{child}: {MANIFEST} is missing")
    if not runs:
        raise CsvFormatError(f"{path}: no commitbench results (no */{MANIFEST})")
    return runs


class _Reader:
    """Parses one run directory; every problem becomes a CsvFormatError naming its place."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)
        self.version = FORMAT_VERSION  # the manifest's, once read

    def fail(self, message: str) -> CsvFormatError:
        return CsvFormatError(f"{self.where}: {message}")

    def manifest(self) -> dict[str, Any]:
        path = self.folder / MANIFEST
        self.where = str(path)
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise self.fail("missing") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.fail(f"not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise self.fail(f"not a {FORMAT_NAME} manifest")
        version = data.get("version")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            readable = ", ".join(map(str, sorted(READABLE_VERSIONS)))
            raise self.fail(
                f"format version {version!r} is not supported (this commitbench reads "
                f"versions {readable})"
            )
        self.version = int(version)
        for key in ("run", "commit", "machine", "parts"):
            if key not in data:
                raise self.fail(f"no {key!r} entry")
        return data

    def rows(self, entry: Any, header: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
        if not isinstance(entry, dict) or not {"file", "rows", "sha256"} <= entry.keys():
            raise self.fail("a file entry lacks file, rows or sha256")
        name = entry["file"]
        if not isinstance(name, str) or "/" in name or name.startswith("."):
            raise self.fail(f"bad file name {name!r}")
        path = self.folder / name
        self.where = str(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise self.fail("missing") from None
        if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
            raise self.fail("truncated or modified (checksum differs from the manifest)")
        try:
            reader = csv.reader(io.StringIO(raw.decode("utf-8"), newline=""))
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
                yield line, dict(zip(header, row, strict=True))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise self.fail(f"unreadable CSV ({exc})") from None
        if count != entry["rows"]:
            raise self.fail(f"{plural(count, 'row')}, the manifest says {entry['rows']}")

    def value(self, line: int, column: str, text: str, parse: Callable[[str], Any]) -> Any:
        if text == "":
            return None
        try:
            return parse(text)
        except (ValueError, TypeError, json.JSONDecodeError):
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
        yield (
            r.value(line, "result_key", row["result_key"], int),
            DeviceSample(
                time=time,
                gpu_index=r.value(line, "gpu_index", row["gpu_index"], int),
                throttle_reasons=r.value(line, "throttle_reasons", row["throttle_reasons"], int),
                **values,
            ),
        )


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
    units = []
    for part in manifest["parts"]:
        if not isinstance(part, dict):
            raise r.fail("a part entry is not an object")
        units.append(_read_part(r, part))
    end = None
    if manifest.get("end") is not None:
        raw_end = manifest["end"]
        run_samples = []
        for key, sample in _samples(r, raw_end.get("device_samples")):
            if key is not None:
                raise r.fail("run-level samples must not name a result")
            run_samples.append(sample)
        try:
            end = RunEnd(
                finished_at=parse_datetime(raw_end["finished_at"]),
                status=raw_end["status"],
                device_samples=tuple(run_samples),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise r.fail(f"bad run end ({exc})") from None
    return RunData(header=header, units=tuple(units), end=end)


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
    for line, row in r.rows(part.get("results"), RESULT_HEADER):
        key = r.value(line, "result_key", row["result_key"], int)
        keys.add(key)
        try:
            case = CaseKey.of(
                row["case_name"], r.value(line, "case_params", row["case_params"], _object)
            )
            if row["case_label"] not in (case.label, _bare_label(case)):
                raise r.fail(f"line {line}: case_label does not match name and params")
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
        if not isinstance(part, dict):
            raise r.fail("a part entry is not an object")
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
        if not isinstance(part, dict):
            raise r.fail("a part entry is not an object")
        for _, row in r.rows(part.get("results"), RESULT_HEADER):
            labels[row["case_label"]] = row["status"]
    return header, labels
