"""What both importers share: reading a JSON file safely, naming what is wrong with it
in one line, case names, run ids, and how a commit named in a file becomes a CommitInfo.

The readers (pytest_benchmark.py, asv.py) are pure: files in, RunData out, every value
through model/records.py (so model/checks.py's rules) before anything is written. Where
the commit details come from is a `Commits` given to them (load.py builds it from a
clone or a repository URL).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from commitbench.errors import CommitbenchError, ForeignFormatError
from commitbench.model.cases import ParamValue
from commitbench.model.records import CommitInfo, RecordError, canonical_json

# A benchmark results file larger than this is not one a tool wrote for a run (asv's and
# pytest-benchmark's are kilobytes to a few MiB, raw samples included).
MAX_JSON_BYTES = 256 * 2**20
# uuid5 namespace of imported runs: the same file, commit and machine give the same run
# id on every import, so importing twice adds nothing (the run and its results exist).
RUN_NAMESPACE = uuid.UUID("6c0e6f4e-8a51-5b8e-9a2f-2f1b8e4b1c15")


T = TypeVar("T")


class Commits(Protocol):
    """Where an imported commit's details come from."""

    def commit(self, sha: str, committed_at: datetime | None) -> CommitInfo:
        """The commit `sha` names (a full sha; an abbreviation where a clone resolves
        it); `committed_at` is the file's own commit time, for when nothing better is
        known. Raises a CommitbenchError naming the commit when it cannot be used."""
        ...


@dataclass(frozen=True)
class Source:
    """One file being read: its path (for messages), bytes and their sha256."""

    path: Path
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def fail(self, message: str) -> ForeignFormatError:
        return ForeignFormatError(f"{self.path}: {message}")

    def json(self) -> Any:
        try:
            text = self.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"not UTF-8 text (byte {exc.start})") from None
        try:
            # asv writes -Infinity/Infinity for open confidence bounds: json.loads reads
            # them as floats; they are refused below wherever a measurement must be finite.
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise self.fail(f"not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
        except RecursionError:
            raise self.fail("not JSON (nested too deeply)") from None


def read_source(path: Path) -> Source:
    """A regular file's bytes, refused (one line) when it is missing, not a regular file
    (a FIFO would block the import), unreadable or implausibly large."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ForeignFormatError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ForeignFormatError(f"{path}: not a regular file")
    if info.st_size > MAX_JSON_BYTES:
        raise ForeignFormatError(f"{path}: {info.st_size} bytes, more than {MAX_JSON_BYTES}")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise ForeignFormatError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > MAX_JSON_BYTES:
        raise ForeignFormatError(f"{path}: more than {MAX_JSON_BYTES} bytes")
    return Source(path, data)


class Fields:
    """Typed access to a JSON object, every failure naming the file and the field path."""

    def __init__(self, source: Source, value: Any, where: str) -> None:
        self.source = source
        self.where = where
        if not isinstance(value, dict):
            raise source.fail(f"{where or 'the document'} is not an object")
        self.value: dict[str, Any] = value

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, message: str) -> ForeignFormatError:
        return self.source.fail(f"field {self._name(key)}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
        if key not in self.value or self.value[key] is None:
            if required:
                raise self.source.fail(f"field {self._name(key)} is missing")
            return None
        found = self.value[key]
        if isinstance(found, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(key, f"is {found!r}, not a {_kind_name(kind)}")
        if not isinstance(found, kind):
            raise self.fail(key, f"is a {_json_type(found)}, not a {_kind_name(kind)}")
        return found

    def obj(self, key: str, *, required: bool = True) -> Fields | None:
        found = self.get(key, dict, required=required)
        return None if found is None else Fields(self.source, found, self._name(key))

    def number(self, key: str, *, required: bool = True) -> float | None:
        found = self.get(key, (int, float), required=required)
        return None if found is None else found

    def time(self, key: str, *, required: bool = True) -> datetime | None:
        found = self.get(key, str, required=required)
        if found is None:
            return None
        try:
            moment = datetime.fromisoformat(found)
        except ValueError:
            raise self.fail(key, f"{found!r} is not an ISO 8601 time") from None
        if moment.utcoffset() is None:
            raise self.fail(key, f"{found!r} has no UTC offset")
        return moment

    def checked(self, make: Callable[[], T], key: str = "") -> T:
        """`make()`, with a RecordError (a value model/checks.py refuses) named here."""
        try:
            return make()
        except RecordError as exc:
            where = self._name(key) if key else (self.where or "the document")
            raise self.source.fail(f"{where}: {exc}") from None


def resolve(
    source: Source, field: str, commits: Commits, sha: str, committed_at: datetime | None
) -> CommitInfo:
    """The commit `field` of `source` names; a commit that cannot be used (the user's
    input, exit 2) is named with the file and field, git failing (exit 3) is not
    reworded."""
    try:
        return commits.commit(sha, committed_at)
    except CommitbenchError as exc:
        if exc.exit_code != ForeignFormatError.exit_code:
            raise
        raise source.fail(f"field {field}: {exc}") from None


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds:
        kinds = tuple(k for k in kinds if k is not int)  # an integer is a number too
    names = {dict: "object", list: "list", str: "string", int: "integer", float: "number"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _json_type(value: Any) -> str:
    return _kind_name(type(value)) if isinstance(value, dict | list | str | int | float) else "null"


def case_name(parts: list[str]) -> str:
    """A dotted identifier (CaseKey's rule) from a tool's name parts: characters other
    than letters, digits and `_` become `_`, and a part starting with a digit gets a
    leading `_` (`benchmarks/io-heavy/test_x.py::test_y` -> `benchmarks.io_heavy.test_x
    .test_y`)."""
    cleaned = []
    for part in parts:
        text = re.sub(r"[^\w]", "_", part, flags=re.ASCII) or "_"
        cleaned.append(f"_{text}" if text[0].isdigit() else text)
    return ".".join(cleaned)


def param_value(value: Any) -> ParamValue:
    """A parameter as a case keeps it: a scalar as it is, anything else as its canonical
    JSON text (a list, an object)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        return canonical_json(value)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def run_id(fmt: str, source: Source, commit: CommitInfo, parts: Mapping[str, Any]) -> uuid.UUID:
    """Deterministic: the format, the file's content, the commit it is recorded for and
    anything else that tells its runs apart (`parts`)."""
    name = canonical_json(
        {
            "format": fmt,
            "sha256": source.sha256,
            "repository": commit.repository,
            "sha": commit.sha,
            **parts,
        }
    )
    return uuid.uuid5(RUN_NAMESPACE, name)
