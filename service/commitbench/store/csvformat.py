"""The commitbench CSV format, version 3: names, columns, and the run header as JSON.

Version 3 adds the metrics column `processes` (the worker process of each raw sample, a
JSON list parallel to `samples`); files of the versions before it have no such column and
read as one process (issue 13).

See commitbench.store.csv for the layout; csv.py writes it and csvread.py reads it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from commitbench.model.records import (
    METRIC_FIELDS,
    CommitInfo,
    DeviceSample,
    MachineInfo,
    RunHeader,
    RunInfo,
)

FORMAT_NAME = "commitbench-csv"
FORMAT_VERSION = 3
READABLE_VERSIONS = frozenset({1, 2, 3})
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


def parse_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.utcoffset() is None:
        raise ValueError("naive timestamp")
    return value


def header_from_json(m: Mapping[str, Any]) -> RunHeader:
    run, commit, machine = m["run"], m["commit"], m["machine"]

    def when(value: str | None) -> datetime | None:
        return None if value is None else parse_datetime(value)

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
