"""The commitbench CSV format: names, versions, columns, limits, the run header as JSON,
and the manifest's checksum.

See commitbench.store.csv for the layout; csv.py writes it, csvmanifest.py and
csvread.py read it.

Versions: 1, the first; 2 adds `checksum` to the manifest (sha256 of the manifest's
canonical JSON without that field), so an edited commit, profile or run id is caught as
an edited CSV file is. The files of the two versions are the same, and a reader reads
both (version 1 has no checksum to check); 3 adds the metrics column `processes` (the
worker process of each raw sample, a JSON list parallel to `samples`, issue 13): files
of the versions before it have no such column and read as one process. A new version
goes into READABLE_VERSIONS with what tells it apart.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from commitbench.model.metrics import METRIC_FIELDS
from commitbench.model.records import (
    CommitInfo,
    DeviceSample,
    MachineInfo,
    RecordError,
    RunHeader,
    RunInfo,
)

FORMAT_NAME = "commitbench-csv"
FORMAT_VERSION = 3  # what this commitbench writes
READABLE_VERSIONS = frozenset({1, 2, 3})  # what it reads
CHECKSUM_SINCE = 2  # manifests of this version and later carry `checksum`
MANIFEST = "manifest.json"

# What a reader takes in, so that no file makes it hang or run out of memory (files are
# read whole; run directories are made of many parts, one per bench module):
# - a manifest of 16 MiB (about 40,000 parts);
# - a CSV file of 1 GiB (about 5 million device samples, hours of 8 GPUs at 10 Hz);
# - a line or cell of 16 MiB (a metric of 700,000 raw samples; ctx.time keeps <= 10,000).
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_FILE_BYTES = 2**30
MAX_LINE_CHARS = 16 * 2**20

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
# Before version 3: no processes column (every sample is process 0's).
METRIC_HEADER_V1 = tuple(c for c in METRIC_HEADER if c != "processes")


def metric_header(version: int) -> tuple[str, ...]:
    return METRIC_HEADER if version >= 3 else METRIC_HEADER_V1


SAMPLE_HEADER = ("result_key", *DeviceSample._fields)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def run_to_json(run: RunInfo) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "started_at": iso(run.started_at),
        "trigger": run.trigger,
        "profile": run.profile,
        "branch": run.branch,
        "environment": dict(run.environment),
    }


def commit_to_json(c: CommitInfo) -> dict[str, Any]:
    return {
        "repository": c.repository,
        "sha": c.sha,
        "parents": list(c.parents),
        "author_name": c.author_name,
        "author_email": c.author_email,
        "authored_at": iso(c.authored_at),
        "committed_at": iso(c.committed_at),
        "subject": c.subject,
    }


def machine_to_json(m: MachineInfo) -> dict[str, Any]:
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


def manifest_checksum(manifest: Mapping[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys, no whitespace, ASCII),
    without its `checksum` field: any edit to what it says changes it, and a reformatted
    manifest (indentation, key order) still matches."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def parse_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.utcoffset() is None:
        raise ValueError("naive timestamp")
    return value


class _Fields:
    """Typed access to one object of the manifest; a wrong type is a ValueError that
    names the field (`commit.subject: expected a string, found a list`)."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object, found {_kind(data)}")
        self.data = data
        self.where = where

    def get(self, key: str, types: tuple[type, ...], *, optional: bool = False) -> Any:
        if key not in self.data:
            raise ValueError(f"{self.where}.{key}: missing")
        value = self.data[key]
        if value is None and optional:
            return None
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise ValueError(f"{self.where}.{key}: expected {_names(types)}, found {_kind(value)}")
        return value

    def text(self, key: str, *, optional: bool = False) -> Any:
        return self.get(key, (str,), optional=optional)

    def when(self, key: str) -> datetime:
        try:
            return parse_datetime(self.text(key))
        except ValueError as exc:
            if str(exc).startswith(self.where):
                raise
            raise ValueError(f"{self.where}.{key}: not an ISO time with a UTC offset") from None

    def maybe_when(self, key: str) -> datetime | None:
        return None if self.get(key, (str,), optional=True) is None else self.when(key)

    def integer(self, key: str, *, optional: bool = False) -> Any:
        return self.get(key, (int,), optional=optional)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(
        {str: "a string", int: "an integer", dict: "an object"}.get(t, "a list") for t in types
    )


_MACHINE_TEXT = ("gpu_name", "driver_version", "cuda_version", "cpu_model")
_MACHINE_INTS = ("gpu_memory_mib", "cpu_count", "ram_mib")


def header_from_json(m: Mapping[str, Any]) -> RunHeader:
    """The run header of a manifest; ValueError naming the field for a wrong type, a
    missing field or a value the records refuse."""
    run = _Fields(m.get("run"), "run")
    commit = _Fields(m.get("commit"), "commit")
    machine = _Fields(m.get("machine"), "machine")
    unknown = set(machine.data) - {
        "fingerprint",
        "gpu_count",
        "info",
        *_MACHINE_TEXT,
        *_MACHINE_INTS,
    }
    if unknown:
        raise ValueError(f"machine.{sorted(unknown)[0]}: not a field of a machine")
    parents = commit.get("parents", (list,))
    if not all(isinstance(p, str) for p in parents):
        raise ValueError("commit.parents: expected a list of strings")
    try:
        run_id = uuid.UUID(run.text("id"))
    except ValueError:
        raise ValueError("run.id: not a UUID") from None
    try:
        return RunHeader(
            run=RunInfo(
                id=run_id,
                started_at=run.when("started_at"),
                trigger=run.text("trigger"),
                profile=run.text("profile"),
                branch=run.text("branch", optional=True),
                environment=run.get("environment", (dict,)),
            ),
            commit=CommitInfo(
                repository=commit.text("repository"),
                sha=commit.text("sha"),
                parents=tuple(parents),
                author_name=commit.text("author_name", optional=True),
                author_email=commit.text("author_email", optional=True),
                authored_at=commit.maybe_when("authored_at"),
                committed_at=commit.maybe_when("committed_at"),
                subject=commit.text("subject", optional=True),
            ),
            machine=MachineInfo(
                fingerprint=machine.text("fingerprint"),
                gpu_count=machine.integer("gpu_count"),
                info=machine.get("info", (dict,)),
                **{k: machine.text(k, optional=True) for k in _MACHINE_TEXT if k in machine.data},
                **{
                    k: machine.integer(k, optional=True) for k in _MACHINE_INTS if k in machine.data
                },
            ),
        )
    except RecordError as exc:
        raise ValueError(str(exc)) from None
