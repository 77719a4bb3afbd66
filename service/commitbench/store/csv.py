"""CSV store: the embedded default, and the spool when the database goes away.

Layout (format "commitbench-csv", version 3; csvformat.py says what changed)::

    RESULTS/<run uuid>/manifest.json          run, commit, machine, parts, end
    RESULTS/<run uuid>/results-0001.csv       one part per recorded unit
    RESULTS/<run uuid>/metrics-0001.csv
    RESULTS/<run uuid>/device_samples-0001.csv
    RESULTS/<run uuid>/run_samples.csv        samples taken between cases (at the end)

Every file is written to a temporary name, fsynced and renamed; the manifest, rewritten
the same way after each part, is the commit point: it lists each file with its row
count and sha256, so a part written by a process that died before its manifest update
is ignored, and a truncated or edited file is refused instead of half-imported; the
manifest carries a checksum of its own content, so an edit to it is refused too. Empty
cells are NULL; floats are written with repr() and read back bit for bit; lines end with
CRLF (RFC 4180), so a cell holding a line break of either kind is quoted.

A reader refuses any format version not in READABLE_VERSIONS. A change to columns or their
meaning bumps FORMAT_VERSION, and the reader keeps reading every older version it can
convert. A spooled run resumed by a later commitbench keeps the version it was begun in.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from commitbench.errors import CsvFormatError
from commitbench.model.points import ANY, Point, PointFilter, Series, SeriesPoint, Step
from commitbench.model.records import (
    COMPLETE_RUN_STATUSES,
    RecordedKey,
    ResultRecord,
    RunData,
    RunEnd,
    RunHeader,
)
from commitbench.store import csvpoints
from commitbench.store.csvformat import (
    CHECKSUM_SINCE,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    RESULT_HEADER,
    SAMPLE_HEADER,
    commit_to_json,
    machine_to_json,
    manifest_checksum,
    metric_header,
    run_to_json,
)
from commitbench.store.csvread import (
    find_runs,
    read_header,
    read_labels,
    read_run,
    read_status,
)

__all__ = ["MANIFEST", "CsvStore", "find_runs", "read_run"]

log = logging.getLogger(__name__)


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
    # Lines end with CRLF (RFC 4180): csv quotes a cell holding any character of the line
    # terminator, and with "\n" alone a bare "\r" (a progress bar in a captured error)
    # went out unquoted and split its row on reading. Files ending lines in "\n" read too.
    writer = csv.writer(buf, lineterminator="\r\n")
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
            "run": run_to_json(header.run),
            "commit": commit_to_json(header.commit),
            "machine": machine_to_json(header.machine),
            "parts": [],
            "end": None,
        }
        self._next_key[run_id] = 0
        self._save_manifest(run_id)

    def interrupt_stale(self, fingerprint: str, gone: Callable[[Any], bool]) -> list[uuid.UUID]:
        """None: a CSV run without an end already reads as unfinished (a later run
        resumes it), and `import` brings it to the database, where it is judged."""
        return []

    def take_recorded_elsewhere(self, run_id: uuid.UUID) -> list[str]:
        """None: a run directory has one writer; `import` drops what another run
        recorded first (store/worklock.py)."""
        return []

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
        # A run begun by an older commitbench keeps its version: before 3, no processes.
        with_processes = manifest["version"] >= 3
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
                    *m.row()[:-3],
                    None if m.samples is None else _json(list(m.samples)),
                    _json(dict(m.properties)),
                    *(
                        [None if m.processes is None else _json(list(m.processes))]
                        if with_processes
                        else []
                    ),
                )
                for m in r.metrics
            )
            sample_rows.extend((key, *s) for s in r.device_samples)
        files = (
            (f"results-{seq:04d}.csv", RESULT_HEADER, result_rows),
            (f"metrics-{seq:04d}.csv", metric_header(manifest["version"]), metric_rows),
            (f"device_samples-{seq:04d}.csv", SAMPLE_HEADER, sample_rows),
        )
        part: dict[str, Any] = {}
        try:
            for kind, (name, header, rows) in zip(
                ("results", "metrics", "device_samples"), files, strict=True
            ):
                part[kind] = self._write_file(folder, name, header, rows)
            manifest["parts"].append(part)
            try:
                self._save_manifest(run_id)
            except BaseException:
                manifest["parts"].pop()
                raise
        except BaseException:
            # Nothing of the unit is committed (the manifest does not name it); its files
            # go, so a full disk gets their space back for the next attempt.
            for name, _header, _rows in files:
                (folder / name).unlink(missing_ok=True)
            raise
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
        try:
            self._save_manifest(run_id)
        except BaseException:
            manifest["end"] = None  # not finished on disk: a later call may finish it
            raise
        return True

    def recorded(self, key: RecordedKey) -> dict[str, str]:
        """The cases with a result for the key in any run under the root: label -> the
        status of the latest (by the run's start) result.

        A damaged run directory is passed over with a warning: it must not stop new
        measurements, and `commitbench import` reports it in full.
        """
        runs = []
        if not self.root.is_dir():
            return {}
        for folder in sorted(p for p in self.root.iterdir() if (p / MANIFEST).is_file()):
            try:
                header, found = read_labels(folder)
            except CsvFormatError as err:
                log.warning("ignoring damaged results: %s", err)
                continue
            if RecordedKey.of(header) == key:
                runs.append((header.run.started_at, found))
        labels: dict[str, str] = {}
        for _, found in sorted(runs, key=lambda run: run[0]):
            labels.update(found)
        return labels

    def selections(self, key: RecordedKey) -> list[dict[str, Any]]:
        """The selections of the complete runs for the key (base.Store.selections)."""
        found: list[dict[str, Any]] = []
        if not self.root.is_dir():
            return found
        for folder in sorted(p for p in self.root.iterdir() if (p / MANIFEST).is_file()):
            try:
                header, status = read_status(folder)
            except CsvFormatError:
                continue  # recorded() warned about it
            selection = header.run.environment.get("selection")
            if status in COMPLETE_RUN_STATUSES and selection and RecordedKey.of(header) == key:
                found.append(dict(selection))
        return found

    # -- reading -------------------------------------------------------------------------

    def points(self, where: PointFilter = ANY) -> list[Point]:
        return csvpoints.csv_points(self.root, where)

    def series_points(self, where: PointFilter = ANY) -> list[SeriesPoint]:
        return csvpoints.csv_series_points(self.root, where)

    def load_run(self, run_id: uuid.UUID) -> RunData:
        if not (self.run_dir(run_id) / MANIFEST).is_file():
            raise CsvFormatError(f"no run {run_id} in {self.root}")
        return read_run(self.run_dir(run_id))

    def runs_of(self, repository: str, sha: str) -> list[tuple[RunHeader, set[str]]]:
        """The runs of one commit, oldest first; the results files are read only for the
        runs whose manifest names the commit. A damaged run is passed over with a
        warning, as in `recorded`."""
        found = []
        if not self.root.is_dir():
            return []
        for folder in sorted(p for p in self.root.iterdir() if (p / MANIFEST).is_file()):
            try:
                commit = read_header(folder).commit
                if (commit.repository, commit.sha) != (repository, sha):
                    continue
                header, labels = read_labels(folder)
            except CsvFormatError as err:
                log.warning("ignoring damaged results: %s", err)
                continue
            found.append((header, set(labels)))
        return sorted(found, key=lambda run: (run[0].run.started_at, str(run[0].run.id)))

    def save_regression(self, series: Series, step: Step) -> int | None:
        return None  # CSV results keep no regressions table: detect only reports

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
        manifest = self._manifests[run_id]
        manifest.pop("checksum", None)
        if manifest["version"] >= CHECKSUM_SINCE:
            # Over the manifest as a reader will parse it (tuples as lists, keys as text).
            manifest["checksum"] = manifest_checksum(json.loads(json.dumps(manifest)))
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        _atomic_write(self.run_dir(run_id) / MANIFEST, text.encode("utf-8"))
