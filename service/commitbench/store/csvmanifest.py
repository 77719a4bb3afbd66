"""One CSV run directory as read: its manifest and the CSV files it names, refusing
anything damaged with the place it is in. Apart from csvread.py, which turns the rows
into records, because this is the defence against damaged and hostile files.

Files are opened without following a symbolic link and without blocking (a FIFO or a
device in place of a part is refused, not waited on or read forever), and read up to
the limits in csvformat.py (csvfiles.py). The manifest's format, version and checksum
and its shape, field by field, are checked before any file it names is opened; each
file's sha256, header and row count are checked against the manifest, and every text,
in a cell or in the manifest, must be one PostgreSQL can hold, so what reads here
imports.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from commitbench.errors import CsvFormatError
from commitbench.model.records import RecordError
from commitbench.model.text import unstorable
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
    manifest_checksum,
)

# The csv module's own cap on a cell (128 KiB by default, less than a metric of 10,000
# raw samples) is process-wide; it is raised to the line cap, which is enforced here.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_CHARS))

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PART_KEYS = ("results", "metrics", "device_samples")


class RunReader:
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
