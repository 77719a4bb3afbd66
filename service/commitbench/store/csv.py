"""CSV store: the embedded default, and the spool when the database goes away.

Layout (format "commitbench-csv", version 1)::

    RESULTS/<run uuid>/manifest.json          run, commit, machine, parts, end
    RESULTS/<run uuid>/results-0001.csv       one part per recorded unit
    RESULTS/<run uuid>/metrics-0001.csv
    RESULTS/<run uuid>/device_samples-0001.csv
    RESULTS/<run uuid>/run_samples.csv        samples taken between cases (at the end)

Every file is written to a temporary name, fsynced and renamed; the manifest, rewritten
the same way after each part, is the commit point: it lists each file with its row
count and sha256, so a part written by a process that died before its manifest update
is ignored, and a truncated or edited file is refused instead of half-imported. Empty
cells are NULL; floats are written with repr() and read back bit for bit.

A reader refuses any other format version. A change to columns or their meaning bumps
FORMAT_VERSION, and the reader keeps reading every older version it can convert.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from commitbench.errors import CsvFormatError
from commitbench.records import (
    METRIC_FIELDS,
    CaseKey,
    CommitInfo,
    DeviceSample,
    MachineInfo,
    MetricRecord,
    RecordError,
    ResultRecord,
    RunData,
    RunEnd,
    RunHeader,
    RunInfo,
)

FORMAT_NAME = "commitbench-csv"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

RESULT_HEADER = (
    "result_key",
    "case_name",
    "case_params",
    "case_label",
    "status",
    "error",
    "duration_s",
    "started_at",
)
METRIC_HEADER = ("result_key", *METRIC_FIELDS)
SAMPLE_HEADER = ("result_key", *DeviceSample._fields)


# -- atomic files ------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _csv_bytes(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return buf.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# -- writing -------------------------------------------------------------------------------


class CsvStore:
    """Writes runs under a results directory; one run directory per run id."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._manifests: dict[uuid.UUID, dict[str, Any]] = {}
        self._next_key: dict[uuid.UUID, int] = {}

    @property
    def location(self) -> str:
        return str(self.root)

    def run_dir(self, run_id: uuid.UUID) -> Path:
        return self.root / str(run_id)

    def open_run(self, header: RunHeader) -> None:
        run_id = header.run.id
        folder = self.run_dir(run_id)
        if (folder / MANIFEST).is_file():
            # Resume appending to a run spooled earlier (same run id).
            data = read_run(folder)
            self._manifests[run_id] = json.loads((folder / MANIFEST).read_text("utf-8"))
            self._next_key[run_id] = sum(len(u) for u in data.units)
            return
        folder.mkdir(parents=True, exist_ok=True)
        self._manifests[run_id] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "run": _run_to_json(header.run),
            "commit": _commit_to_json(header.commit),
            "machine": _machine_to_json(header.machine),
            "parts": [],
            "end": None,
        }
        self._next_key[run_id] = 0
        self._save_manifest(run_id)

    def write_unit(self, run_id: uuid.UUID, results: Sequence[ResultRecord]) -> int:
        if not results:
            return 0
        manifest = self._manifests[run_id]
        folder = self.run_dir(run_id)
        seq = len(manifest["parts"]) + 1
        first = self._next_key[run_id]
        result_rows: list[tuple[Any, ...]] = []
        metric_rows: list[tuple[Any, ...]] = []
        sample_rows: list[tuple[Any, ...]] = []
        for key, r in enumerate(results, start=first):
            result_rows.append(
                (
                    key,
                    r.case.name,
                    _json(r.case.params_dict),
                    r.case.label,
                    r.status,
                    r.error,
                    r.duration_s,
                    r.started_at,
                )
            )
            metric_rows.extend(
                (
                    key,
                    m.name,
                    m.unit,
                    m.direction,
                    m.n,
                    m.mean,
                    m.median,
                    m.stddev,
                    m.min,
                    m.max,
                    m.ci_low,
                    m.ci_high,
                    None if m.samples is None else _json(list(m.samples)),
                    _json(dict(m.properties)),
                )
                for m in r.metrics
            )
            sample_rows.extend((key, *s) for s in r.device_samples)
        part = {
            "results": self._write_file(
                folder, f"results-{seq:04d}.csv", RESULT_HEADER, result_rows
            ),
            "metrics": self._write_file(
                folder, f"metrics-{seq:04d}.csv", METRIC_HEADER, metric_rows
            ),
            "device_samples": self._write_file(
                folder, f"device_samples-{seq:04d}.csv", SAMPLE_HEADER, sample_rows
            ),
        }
        manifest["parts"].append(part)
        self._save_manifest(run_id)
        self._next_key[run_id] = first + len(results)
        return len(results)

    def finish_run(self, run_id: uuid.UUID, end: RunEnd) -> bool:
        manifest = self._manifests[run_id]
        if manifest["end"] is not None:
            return False
        samples = self._write_file(
            self.run_dir(run_id),
            "run_samples.csv",
            SAMPLE_HEADER,
            [(None, *s) for s in end.device_samples],
        )
        manifest["end"] = {
            "finished_at": end.finished_at.isoformat(),
            "status": end.status,
            "device_samples": samples,
        }
        self._save_manifest(run_id)
        return True

    def write_run(self, data: RunData) -> Path:
        """Write a whole run (export); replaces an earlier copy of the same run."""
        run_id = data.header.run.id
        staging = Path(tempfile.mkdtemp(prefix=f".{run_id}.", dir=self.root))
        try:
            stage = CsvStore(staging)
            stage.open_run(data.header)
            for unit in data.units:
                stage.write_unit(run_id, unit)
            if data.end is not None:
                stage.finish_run(run_id, data.end)
            target = self.run_dir(run_id)
            if target.exists():
                shutil.rmtree(target)
            os.replace(stage.run_dir(run_id), target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    @staticmethod
    def _write_file(
        folder: Path, name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> dict[str, Any]:
        data = _csv_bytes(header, rows)
        _atomic_write(folder / name, data)
        return {"file": name, "rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()}

    def _save_manifest(self, run_id: uuid.UUID) -> None:
        text = json.dumps(self._manifests[run_id], indent=2, sort_keys=True) + "\n"
        _atomic_write(self.run_dir(run_id) / MANIFEST, text.encode("utf-8"))


# -- JSON of the run header ------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _run_to_json(run: RunInfo) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "started_at": _iso(run.started_at),
        "trigger": run.trigger,
        "profile": run.profile,
        "branch": run.branch,
        "environment": dict(run.environment),
    }


def _commit_to_json(c: CommitInfo) -> dict[str, Any]:
    return {
        "repository": c.repository,
        "sha": c.sha,
        "parents": list(c.parents),
        "author_name": c.author_name,
        "author_email": c.author_email,
        "authored_at": _iso(c.authored_at),
        "committed_at": _iso(c.committed_at),
        "subject": c.subject,
    }


def _machine_to_json(m: MachineInfo) -> dict[str, Any]:
    return {
        "fingerprint": m.fingerprint,
        "gpu_name": m.gpu_name,
        "gpu_count": m.gpu_count,
        "gpu_memory_mib": m.gpu_memory_mib,
        "driver_version": m.driver_version,
        "cuda_version": m.cuda_version,
        "cpu_model": m.cpu_model,
        "cpu_count": m.cpu_count,
        "ram_mib": m.ram_mib,
        "info": dict(m.info),
    }


# -- reading ---------------------------------------------------------------------------------


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
        if version != FORMAT_VERSION:
            raise self.fail(
                f"format version {version!r} is not supported (this commitbench reads "
                f"version {FORMAT_VERSION})"
            )
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
                    raise self.fail(f"line {line}: {len(row)} cells, expected {len(header)}")
                count += 1
                yield line, dict(zip(header, row, strict=True))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise self.fail(f"unreadable CSV ({exc})") from None
        if count != entry["rows"]:
            raise self.fail(f"{count} rows, the manifest says {entry['rows']}")

    def value(self, line: int, column: str, text: str, parse: Callable[[str], Any]) -> Any:
        if text == "":
            return None
        try:
            return parse(text)
        except (ValueError, TypeError, json.JSONDecodeError):
            raise self.fail(f"line {line}: column {column}: bad value {text[:40]!r}") from None


def _datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.utcoffset() is None:
        raise ValueError("naive timestamp")
    return value


def _float_list(text: str) -> tuple[float, ...]:
    values = json.loads(text)
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise ValueError("not a list of numbers")
    return tuple(float(v) for v in values)


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
        time = r.value(line, "time", row["time"], _datetime)
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


def read_run(folder: Path) -> RunData:
    """Read and validate one run directory; CsvFormatError on anything wrong."""
    r = _Reader(Path(folder))
    manifest = r.manifest()
    try:
        header = _header_from_json(manifest)
    except (KeyError, TypeError, ValueError) as exc:
        raise r.fail(f"bad run header ({exc})") from None
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
                finished_at=_datetime(raw_end["finished_at"]),
                status=raw_end["status"],
                device_samples=tuple(run_samples),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise r.fail(f"bad run end ({exc})") from None
    return RunData(header=header, units=tuple(units), end=end)


def _read_part(r: _Reader, part: Mapping[str, Any]) -> tuple[ResultRecord, ...]:
    metrics: dict[int, list[MetricRecord]] = {}
    for line, row in r.rows(part.get("metrics"), METRIC_HEADER):
        key = r.value(line, "result_key", row["result_key"], int)
        numbers = {
            c: r.value(line, c, row[c], float)
            for c in ("mean", "median", "stddev", "min", "max", "ci_low", "ci_high")
        }
        try:
            metric = MetricRecord(
                name=row["name"],
                unit=row["unit"],
                direction=row["direction"],
                n=r.value(line, "n", row["n"], int),
                samples=r.value(line, "samples", row["samples"], _float_list),
                properties=r.value(line, "properties", row["properties"], _object) or {},
                **numbers,
            )
        except (RecordError, TypeError) as exc:
            raise r.fail(f"line {line}: {exc}") from None
        metrics.setdefault(key, []).append(metric)
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
            if case.label != row["case_label"]:
                raise r.fail(f"line {line}: case_label does not match name and params")
            results.append(
                ResultRecord(
                    case=case,
                    status=row["status"],
                    error=row["error"] or None,
                    duration_s=r.value(line, "duration_s", row["duration_s"], float),
                    started_at=r.value(line, "started_at", row["started_at"], _datetime),
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


def _header_from_json(m: Mapping[str, Any]) -> RunHeader:
    run, commit, machine = m["run"], m["commit"], m["machine"]

    def when(value: str | None) -> datetime | None:
        return None if value is None else _datetime(value)

    started = when(run["started_at"])
    if started is None:
        raise ValueError("run has no started_at")
    return RunHeader(
        run=RunInfo(
            id=uuid.UUID(run["id"]),
            started_at=started,
            trigger=run["trigger"],
            profile=run["profile"],
            branch=run["branch"],
            environment=run["environment"],
        ),
        commit=CommitInfo(
            repository=commit["repository"],
            sha=commit["sha"],
            parents=tuple(commit["parents"]),
            author_name=commit["author_name"],
            author_email=commit["author_email"],
            authored_at=when(commit["authored_at"]),
            committed_at=when(commit["committed_at"]),
            subject=commit["subject"],
        ),
        machine=MachineInfo(**machine),
    )
