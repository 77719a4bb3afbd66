"""The files of a profile (`--trace`), kept by the sha256 of their bytes.

Each traced case may leave a gzipped Chrome trace and, on CUDA, a gzipped memory
snapshot (harness/profiling.py). The result's `profile.time_per_iter` metric names them
in `properties.artifacts` ({kind: sha256}); the bytes live

- in the CSV store beside the run: `<run directory>/artifacts/<sha256><extension>`;
- in PostgreSQL in `profile_artifacts` (bytea, stored as written: already gzip-compressed),
  deleted with their run, and after `COMMITBENCH_ARTIFACT_RETENTION_DAYS` days (default
  90; 0 keeps them) by every later save.

A file over `COMMITBENCH_ARTIFACT_MAX_MIB` (default 64) is not kept, in either store; the
warning names the case, the size and the setting. `export` and `import` carry the files
with their runs. `import` checks every file of every run first (`check_files`: a regular
file, not a link, within the cap, its bytes hashing to its name) and refuses the whole
import over one bad file; then it writes the files' rows in the results' transaction
(`write_rows`), so the runs and their files go in together or not at all.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Table, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine

from commitbench.errors import CommitbenchError, CsvFormatError
from commitbench.model import profile
from commitbench.store.csvfiles import read_regular
from commitbench.store.tables import ARTIFACT_KINDS, ProfileArtifact

log = logging.getLogger(__name__)

EXTENSIONS = {profile.CHROME_TRACE: ".trace.json.gz", profile.MEMORY_SNAPSHOT: ".memory.pickle.gz"}
FOLDER = "artifacts"
MAX_MIB_ENV = "COMMITBENCH_ARTIFACT_MAX_MIB"
RETENTION_ENV = "COMMITBENCH_ARTIFACT_RETENTION_DAYS"
DEFAULT_MAX_MIB = 64.0
DEFAULT_RETENTION_DAYS = 90
REFERENCE = profile.ARTIFACTS  # the key in a profile metric's properties


@dataclass(frozen=True)
class Artifact:
    kind: str
    case_label: str
    data: bytes
    sha256: str

    @classmethod
    def of(cls, kind: str, case_label: str, data: bytes) -> Artifact:
        if kind not in ARTIFACT_KINDS:
            raise ValueError(f"artifact kind {kind!r} is not one of {ARTIFACT_KINDS}")
        return cls(kind, case_label, data, hashlib.sha256(data).hexdigest())


def _setting(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise CommitbenchError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise CommitbenchError(f"{name}={raw!r} is negative")
    return value


def max_bytes() -> int:
    return int(_setting(MAX_MIB_ENV, DEFAULT_MAX_MIB) * 2**20)


def retention_days() -> float:
    return _setting(RETENTION_ENV, DEFAULT_RETENTION_DAYS)


def within_cap(artifacts: Iterable[Artifact], cap: int | None = None) -> list[Artifact]:
    """The artifacts no larger than the cap; each one over it is named in a warning."""
    limit = max_bytes() if cap is None else cap
    return [a for a in artifacts if fits(a, limit)]


def fits(a: Artifact, limit: int) -> bool:
    """Whether the artifact is within the cap of `limit` bytes; a warning if not."""
    if len(a.data) <= limit:
        return True
    log.warning(
        "the %s of %s is %.3g MiB, over the cap of %.3g MiB (%s): not stored",
        a.kind.replace("_", " "),
        a.case_label,
        len(a.data) / 2**20,
        limit / 2**20,
        MAX_MIB_ENV,
    )
    return False


class ArtifactStore(Protocol):
    """Where a store keeps the artifacts of its runs."""

    def save(self, run_id: uuid.UUID, artifacts: Sequence[Artifact]) -> int:
        """Keep what is not kept yet; how many were new."""
        ...

    def of_run(self, run_id: uuid.UUID, labels: Mapping[str, str]) -> list[Artifact]:
        """The run's artifacts; `labels` maps sha256 to case label (from its results)."""
        ...

    def load(self, sha256: str) -> bytes | None: ...


class CsvArtifacts:
    """Files beside each run: `<root>/<run id>/artifacts/<sha256><extension>`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, run_id: uuid.UUID) -> Path:
        return self.root / str(run_id) / FOLDER

    def save(self, run_id: uuid.UUID, artifacts: Sequence[Artifact]) -> int:
        folder = self._folder(run_id)
        new = 0
        for a in within_cap(artifacts):
            target = folder / f"{a.sha256}{EXTENSIONS[a.kind]}"
            if target.is_file():
                continue
            folder.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            with partial.open("wb") as fh:
                fh.write(a.data)
                fh.flush()
                os.fsync(fh.fileno())
            partial.replace(target)  # whole or absent, never half a file
            new += 1
        return new

    def of_run(self, run_id: uuid.UUID, labels: Mapping[str, str]) -> list[Artifact]:
        return [f.read() for f in check_files(self.root, run_id, labels)]

    def load(self, sha256: str) -> bytes | None:
        for kind_ext in EXTENSIONS.values():
            for path in self.root.glob(f"*/{FOLDER}/{sha256}{kind_ext}"):
                return path.read_bytes()
        return None


_TABLE: Table = ProfileArtifact.__table__  # type: ignore[assignment]


class SqlArtifacts:
    """Rows of `profile_artifacts`; one transaction per save."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, run_id: uuid.UUID, artifacts: Sequence[Artifact]) -> int:
        with self.engine.begin() as conn:
            return write_rows(conn, run_id, artifacts)

    def of_run(self, run_id: uuid.UUID, labels: Mapping[str, str]) -> list[Artifact]:
        table = _TABLE
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.kind, table.c.case_label, table.c.data)
                .where(table.c.run_id == run_id)
                .order_by(table.c.sha256)
            ).all()
        return [Artifact.of(kind, label, bytes(data)) for kind, label, data in rows]

    def load(self, sha256: str) -> bytes | None:
        table = _TABLE
        with self.engine.connect() as conn:
            data = conn.execute(select(table.c.data).where(table.c.sha256 == sha256)).scalar()
        return None if data is None else bytes(data)


def write_rows(conn: Connection, run_id: uuid.UUID, artifacts: Iterable[Artifact]) -> int:
    """Insert the artifacts within the cap in the transaction of `conn`, one at a time
    as the iterable yields them (so an import holds one file in memory), then delete
    those past the retention period; how many were new."""
    limit = max_bytes()
    days = retention_days()
    table = _TABLE
    new = 0
    for a in artifacts:
        if not fits(a, limit):
            continue
        done = conn.execute(
            insert(table)
            .values(
                sha256=a.sha256,
                run_id=run_id,
                case_label=a.case_label,
                kind=a.kind,
                size_bytes=len(a.data),
                data=a.data,
            )
            .on_conflict_do_nothing(index_elements=["sha256"])
            .returning(table.c.sha256)
        )
        new += done.first() is not None
    if days > 0:
        conn.execute(
            delete(table).where(
                table.c.created_at
                < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, days * 86400.0)
            )
        )
    return new


@dataclass(frozen=True)
class ArtifactFile:
    """A profile file of a CSV run directory, checked but not held in memory: `import`
    checks every file of every run before it writes anything, and reads each one again
    inside its transaction (`read`, which checks the bytes again)."""

    path: Path
    kind: str
    case_label: str
    sha256: str

    def read(self, cap: int | None = None) -> Artifact:
        data = _read_file(self.path, max_bytes() if cap is None else cap)
        found = Artifact.of(self.kind, self.case_label, data)
        if found.sha256 != self.sha256:
            raise CsvFormatError(f"{self.path}: its bytes hash to {found.sha256}, not to its name")
        return found


def check_files(
    root: Path, run_id: uuid.UUID, labels: Mapping[str, str], cap: int | None = None
) -> list[ArtifactFile]:
    """The profile files beside run `run_id` under `root`, each checked: a regular file
    (a link, FIFO or device is refused, not followed or waited on), no larger than the
    cap, its bytes hashing to its name. Anything else ends the import (CsvFormatError:
    exit 2, one line naming the file). A name without an artifact's extension (such as
    a `.partial` left by a crash) is not an artifact and is passed over. `labels` maps
    sha256 to the case whose metric names the file."""
    limit = max_bytes() if cap is None else cap
    folder = root / str(run_id) / FOLDER
    try:
        mode = folder.lstat().st_mode
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CsvFormatError(f"{folder}: unreadable ({exc.strerror})") from None
    if stat.S_ISLNK(mode):
        raise CsvFormatError(f"{folder}: a symbolic link; refused")
    if not stat.S_ISDIR(mode):
        raise CsvFormatError(f"{folder}: not a directory; refused")
    found = []
    for path in sorted(folder.iterdir()):
        kind = next((k for k, ext in EXTENSIONS.items() if path.name.endswith(ext)), None)
        if kind is None:
            continue
        name = path.name.removesuffix(EXTENSIONS[kind])
        sha = hashlib.sha256(_read_file(path, limit)).hexdigest()
        if sha != name:
            raise CsvFormatError(f"{path}: its bytes hash to {sha}, not to its name")
        found.append(ArtifactFile(path, kind, labels.get(name, ""), sha))
    return found


def _read_file(path: Path, limit: int) -> bytes:
    try:
        found = path.lstat()
        if stat.S_ISREG(found.st_mode) and found.st_size > limit:
            raise CsvFormatError(
                f"{path}: {found.st_size / 2**20:.3g} MiB, over the cap of {limit / 2**20:.3g} MiB "
                f"({MAX_MIB_ENV}); refused"
            )
        return read_regular(path, limit)
    except ValueError as exc:  # not a regular file, or grown past the cap meanwhile
        raise CsvFormatError(f"{path}: {exc}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CsvFormatError(f"{path}: a symbolic link; refused") from None
        raise CsvFormatError(f"{path}: unreadable ({exc.strerror})") from None


def artifacts_of(store: Any) -> ArtifactStore:
    """The artifact side of a CsvStore (its root) or a SqlStore (its engine)."""
    engine = getattr(store, "engine", None)
    if isinstance(engine, Engine):
        return SqlArtifacts(engine)
    root = getattr(store, "root", None)
    if isinstance(root, Path):
        return CsvArtifacts(root)
    raise TypeError(f"{type(store).__name__} keeps no artifacts")


def referenced(results: Iterable[Any]) -> dict[str, str]:
    """sha256 -> case label of every artifact the results' metrics name."""
    out = {}
    for r in results:
        for m in r.metrics:
            for sha in (m.properties.get(REFERENCE) or {}).values():
                out[str(sha)] = r.case.label
    return out
