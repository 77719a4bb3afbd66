"""The values a run is made of: small, immutable, validated on construction.

Everything a store writes passes through these types, so a bad value (a negative
duration, a naive timestamp, an unknown status) fails here, in the process that made it,
and never half-way through a database transaction or a CSV file.

A case's identity (CaseKey, its label, the pattern rule) is in cases.py, a metric
(MetricRecord, its summary of raw samples) in metrics.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from commitbench.model import checks
from commitbench.model.cases import CaseKey
from commitbench.model.checks import INT4, INT8
from commitbench.model.checks import RecordError as RecordError  # defined with its rules
from commitbench.model.checks import check_samples as check_samples
from commitbench.model.metrics import MetricRecord
from commitbench.model.text import storable

RESULT_STATUSES = ("ok", "skipped", "failed", "timeout", "oom", "crashed")
# A run with one of these is "failed". Out of memory is a finding (a size that does not
# fit), not a malfunction.
FAILED_STATUSES = frozenset({"failed", "timeout", "crashed"})
RUN_STATUSES = ("running", "ok", "failed", "interrupted")
# Runs that went through their whole selection (a later run of it has nothing to do).
COMPLETE_RUN_STATUSES = ("ok", "failed")
TRIGGERS = ("cron", "ci", "manual")
# A run's environment["remeasure"]: what it measures again on purpose (--force, check's
# confirmation rounds: all; --retry-failed: the failed). See store/worklock.py.
REMEASURE_ALL = "all"
REMEASURE_FAILED = "failed"
PROFILES = ("smoke", "full")

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


class Window(NamedTuple):
    """Wall-clock span (epoch seconds) of one `ctx.time`, and the calls made in it: the
    worker reports them so the sampler can integrate power over exactly the timed loops."""

    start: float
    end: float
    calls: int


class DeviceSample(NamedTuple):
    """One sampler tick for one GPU (gpu_index None when the machine has none).

    A NamedTuple rather than a dataclass: a run holds hundreds of thousands of these and
    the stores write them as plain rows.
    """

    time: datetime
    gpu_index: int | None = None
    gpu_util_pct: float | None = None
    gpu_mem_mib: float | None = None
    power_w: float | None = None
    sm_clock_mhz: float | None = None
    temperature_c: float | None = None
    throttle_reasons: int | None = None
    cpu_util_pct: float | None = None
    rss_mib: float | None = None


@dataclass(frozen=True)
class ResultRecord:
    """The outcome of one case in one run."""

    case: CaseKey
    status: str
    error: str | None = None
    duration_s: float | None = None
    started_at: datetime | None = None
    metrics: tuple[MetricRecord, ...] = ()
    device_samples: tuple[DeviceSample, ...] = ()

    def __post_init__(self) -> None:
        if self.error == "":
            # An empty error says nothing, and the CSV store cannot tell it from None.
            object.__setattr__(self, "error", None)
        elif self.error is not None:
            # Free text is kept, with what no store can hold escaped (model/text.py).
            object.__setattr__(self, "error", storable(self.error))
        checks.one_of(self.status, RESULT_STATUSES, f"{self.case.label}: status")
        checks.non_negative(self.duration_s, f"{self.case.label}: duration_s")
        checks.aware(self.started_at, f"{self.case.label}: started_at")
        names = [m.name for m in self.metrics]
        if len(names) != len(set(names)):
            raise RecordError(f"{self.case.label}: duplicate metric names")
        check_samples(self.device_samples)


@dataclass(frozen=True)
class CommitInfo:
    repository: str
    sha: str
    parents: tuple[str, ...] = ()
    author_name: str | None = None
    author_email: str | None = None
    authored_at: datetime | None = None
    committed_at: datetime | None = None
    subject: str | None = None

    def __post_init__(self) -> None:
        if not self.repository:
            raise RecordError("commit repository is empty")
        for sha in (self.sha, *self.parents):
            if not _SHA.match(sha):
                raise RecordError(f"{sha!r} is not a full lowercase hex commit sha")
        checks.aware(self.authored_at, "authored_at")
        checks.aware(self.committed_at, "committed_at")


@dataclass(frozen=True)
class MachineInfo:
    """A machine as identified by its hardware and software facts, never its host name."""

    fingerprint: str
    gpu_name: str | None = None
    gpu_count: int = 0
    gpu_memory_mib: int | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    ram_mib: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _FINGERPRINT.match(self.fingerprint):
            raise RecordError("machine fingerprint must be a sha256 hex digest")
        checks.integer(self.gpu_count, "gpu_count", (0, INT4[1]))
        checks.integer(self.cpu_count, "cpu_count", (0, INT4[1]))
        checks.integer(self.gpu_memory_mib, "gpu_memory_mib", (0, INT8[1]))
        checks.integer(self.ram_mib, "ram_mib", (0, INT8[1]))
        checks.json_value(self.info, "machine info")

    @classmethod
    def from_facts(cls, **facts: Any) -> MachineInfo:
        """Fingerprint = sha256 of the canonical JSON of every fact given."""
        digest = hashlib.sha256(canonical_json(facts).encode()).hexdigest()
        known = {k: facts[k] for k in _MACHINE_COLUMNS if k in facts}
        return cls(fingerprint=digest, info=dict(facts), **known)


_MACHINE_COLUMNS = (
    "gpu_name",
    "gpu_count",
    "gpu_memory_mib",
    "driver_version",
    "cuda_version",
    "cpu_model",
    "cpu_count",
    "ram_mib",
)


@dataclass(frozen=True)
class RunInfo:
    id: uuid.UUID
    started_at: datetime
    trigger: str = "manual"
    profile: str = "smoke"
    branch: str | None = None
    environment: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks.one_of(self.trigger, TRIGGERS, "trigger")
        checks.one_of(self.profile, PROFILES, "profile")
        checks.aware(self.started_at, "started_at")
        checks.json_value(self.environment, "environment")


@dataclass(frozen=True)
class RunHeader:
    """What identifies a run before any result exists."""

    run: RunInfo
    commit: CommitInfo
    machine: MachineInfo


@dataclass(frozen=True)
class RecordedKey:
    """What makes a result the same work: skipped on a later run unless --force."""

    repository: str
    sha: str
    fingerprint: str
    profile: str

    @classmethod
    def of(cls, header: RunHeader) -> RecordedKey:
        return cls(
            header.commit.repository,
            header.commit.sha,
            header.machine.fingerprint,
            header.run.profile,
        )


@dataclass(frozen=True)
class RunEnd:
    finished_at: datetime
    status: str
    device_samples: tuple[DeviceSample, ...] = ()

    def __post_init__(self) -> None:
        checks.one_of(self.status, RUN_STATUSES[1:], "run status")
        checks.aware(self.finished_at, "finished_at")
        check_samples(self.device_samples)


@dataclass(frozen=True)
class RunData:
    """A whole recorded run as read back from a store (for export and import)."""

    header: RunHeader
    units: tuple[tuple[ResultRecord, ...], ...]
    end: RunEnd | None

    def __post_init__(self) -> None:
        for unit in self.units:
            labels = [r.case.label for r in unit]
            if len(labels) != len(set(labels)):
                twice = next(label for label in labels if labels.count(label) > 1)
                raise RecordError(f"{twice} is listed twice in one unit")
        started = self.header.run.started_at
        if self.end is not None and self.end.finished_at < started:
            raise RecordError(
                f"finished_at {self.end.finished_at.isoformat()} is before started_at "
                f"{started.isoformat()}"
            )

    @property
    def results(self) -> tuple[ResultRecord, ...]:
        return tuple(r for unit in self.units for r in unit)
