"""The values a run is made of: small, immutable, validated on construction.

Everything a store writes passes through these types, so a bad value (a negative
duration, a naive timestamp, an unknown status) fails here, in the process that made it,
and never half-way through a database transaction or a CSV file.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, NamedTuple

from commitbench.model import checks
from commitbench.model.checks import INT4, INT8
from commitbench.model.checks import RecordError as RecordError  # defined with its rules
from commitbench.model.checks import check_samples as check_samples
from commitbench.model.stats import Stats
from commitbench.model.text import storable
from commitbench.model.words import plural

RESULT_STATUSES = ("ok", "skipped", "failed", "timeout", "oom", "crashed")
# A run with one of these is "failed". Out of memory is a finding (a size that does not
# fit), not a malfunction.
FAILED_STATUSES = frozenset({"failed", "timeout", "crashed"})
RUN_STATUSES = ("running", "ok", "failed", "interrupted")
# Runs that went through their whole selection (a later run of it has nothing to do).
COMPLETE_RUN_STATUSES = ("ok", "failed")
TRIGGERS = ("cron", "ci", "manual")
# A run's environment["remeasure"]: what it measures again on purpose (--force, check's
# confirmation rounds: all; --retry-failed: the failed). See store/sql.py.
REMEASURE_ALL = "all"
REMEASURE_FAILED = "failed"
PROFILES = ("smoke", "full")
DIRECTIONS = ("lower", "higher")

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"[A-Za-z_][\w.]*")  # fullmatch: "$" would let a final newline in
# A string value containing one of these is quoted in a label, as is one that reads as
# another JSON value ("1", "true", "null"): so no two parameter mappings share a label.
_LABEL_PUNCTUATION = frozenset(',=[]"')

ParamValue = str | int | float | bool | None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _one_of(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise RecordError(f"{what} {value!r} is not one of {', '.join(allowed)}")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


# What json.loads accepts as a whole text, without raising and catching an exception
# for every plain string: a number, one of its words, or (rare) an object.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_JSON_WORDS = frozenset({"true", "false", "null", "NaN", "Infinity", "-Infinity"})


def _reads_as_json(text: str) -> bool:
    bare = text.strip(" \t\n\r")
    if bare in _JSON_WORDS or _JSON_NUMBER.fullmatch(bare):
        return True
    if not bare.startswith("{"):
        return False  # a string or an array would hold '"' or '[', quoted anyway
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _shown(value: ParamValue) -> str:
    """A value as a label shows it: JSON, except a plain string, which stays bare."""
    if not isinstance(value, str):
        return json.dumps(value)
    if value == "" or _LABEL_PUNCTUATION.intersection(value) or _reads_as_json(value):
        return json.dumps(value, ensure_ascii=False)
    return value


def case_label(name: str, params: Mapping[str, ParamValue]) -> str:
    """`module.function[k=v,...]` with keys sorted, so the id is stable across commits.

    Values are JSON (`n=8192`, `p=0.5`, `on=true`, `x=null`) except plain strings, shown
    bare (`shape=4k`); a string that would read as something else (`"1"`, `"true"`,
    `"a,b=c"`, `""`) is quoted. So the label is injective: two mappings that differ by a
    key, a value or a value's type never share one (tests/model/test_case_identity.py).
    """
    if not params:
        return name
    parts = [f"{key}={_shown(params[key])}" for key in sorted(params)]
    return f"{name}[{','.join(parts)}]"


def case_matches(label: str, pattern: str | None) -> bool:
    """The one rule for choosing cases by a pattern (`run`, `check` and `enqueue`
    --filter, `report --case`, --threshold and `[tool.commitbench.thresholds]`): a glob
    (fnmatch, case-sensitive) when the pattern has a wildcard `*`, `?` or `[`, else a
    substring of the case id. No pattern chooses every case."""
    if pattern is None:
        return True
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(label, pattern)
    return pattern in label


@dataclass(frozen=True, eq=False)
class CaseKey:
    """Identity of a bench case: its function's dotted name and its parameters.

    Two keys are equal when their labels are: Python's `1 == 1.0 == True` must not make
    the cases `f[x=1]`, `f[x=1.0]` and `f[x=true]` one.
    """

    name: str
    params: tuple[tuple[str, ParamValue], ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise RecordError(f"case name {self.name!r} is not a dotted identifier")
        keys = [k for k, _ in self.params]
        if keys != sorted(set(keys)):
            raise RecordError(f"case {self.name}: params must have sorted, unique keys")
        for key, value in self.params:
            # A parameter is a keyword argument of the bench function: an identifier.
            if not isinstance(key, str) or not key.isidentifier():
                raise RecordError(f"case {self.name}: param name {key!r} is not an identifier")
            if not isinstance(value, str | int | float | bool | type(None)):
                raise RecordError(f"case {self.name}: param {key} is not a scalar")
            if isinstance(value, float) and not math.isfinite(value):
                raise RecordError(f"case {self.name}: param {key} is not finite")

    @classmethod
    def of(cls, name: str, params: Mapping[str, ParamValue] | None = None) -> CaseKey:
        return cls(name, tuple(sorted((params or {}).items())))

    @property
    def params_dict(self) -> dict[str, ParamValue]:
        return dict(self.params)

    @cached_property
    def label(self) -> str:
        return case_label(self.name, self.params_dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CaseKey):
            return NotImplemented
        return self.label == other.label

    def __hash__(self) -> int:
        return hash(self.label)


@dataclass(frozen=True)
class MetricRecord:
    """One metric of a result: raw samples plus their summary."""

    name: str
    unit: str
    direction: str
    n: int
    mean: float | None = None
    median: float | None = None
    stddev: float | None = None
    min: float | None = None
    max: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    samples: tuple[float, ...] | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    # The worker process (0, 1, ... within the result) each sample came from, parallel to
    # `samples`; None: one process (what was recorded before issue 13).
    processes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise RecordError("metric name is empty")
        checks.text(self.name, "metric name")
        checks.text(self.unit, f"metric {self.name}: unit")
        if self.processes is not None:
            if self.samples is None or len(self.processes) != len(self.samples):
                raise RecordError(f"metric {self.name}: processes do not match the samples")
            if any(p < 0 for p in self.processes):
                raise RecordError(f"metric {self.name}: negative process index")
        _one_of(self.direction, DIRECTIONS, f"metric {self.name}: direction")
        checks.integer(self.n, f"metric {self.name}: n", INT4)
        if self.n < 0:
            raise RecordError(f"metric {self.name}: n is negative")
        for stat in _STATISTICS:
            checks.finite(getattr(self, stat), f"metric {self.name}: {stat}")
        if self.samples is not None:
            checks.check_values(self.samples, f"metric {self.name}")
            if len(self.samples) != self.n:
                raise RecordError(
                    f"metric {self.name}: n={self.n} but {plural(len(self.samples), 'sample')}"
                )
        checks.json_value(self.properties, f"metric {self.name}: properties")
        if self.stddev is not None and self.stddev < 0:
            raise RecordError(f"metric {self.name}: negative stddev")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise RecordError(f"metric {self.name}: min > max")

    def row(self) -> tuple[Any, ...]:
        """The values in METRIC_FIELDS order, as the stores write them."""
        return tuple(getattr(self, f) for f in METRIC_FIELDS)

    @classmethod
    def from_samples(
        cls,
        name: str,
        samples: Sequence[float],
        *,
        unit: str,
        direction: str = "lower",
        properties: Mapping[str, Any] | None = None,
        keep_samples: bool = True,
        processes: Sequence[int] | None = None,
    ) -> MetricRecord:
        """The summary of `samples` (model/stats.py); the samples themselves are kept
        unless `keep_samples` is false (sampler summaries: device_samples has them)."""
        checks.check_values(samples, f"metric {name}")
        stats = Stats.of(samples)
        ci = stats.median_ci
        return cls(
            name=name,
            unit=unit,
            direction=direction,
            n=stats.n,
            mean=stats.mean,
            median=stats.median,
            stddev=stats.stddev,
            min=stats.min,
            max=stats.max,
            ci_low=ci[0] if ci else None,
            ci_high=ci[1] if ci else None,
            samples=stats.samples if keep_samples else None,
            properties=dict(properties or {}),
            processes=tuple(processes) if keep_samples and processes is not None else None,
        )

    def by_process(self) -> dict[int, tuple[float, ...]]:
        """The samples of each process (one process, 0, for data recorded before)."""
        return samples_by_process(self.samples or (), self.processes)


# Column order of a metric in the stores (after the result reference); the last three
# (samples, properties, processes) need their own encoding in each store.
METRIC_FIELDS = tuple(f.name for f in dataclasses.fields(MetricRecord))
_STATISTICS = ("mean", "median", "stddev", "min", "max", "ci_low", "ci_high")


def samples_by_process(
    samples: Sequence[float], processes: Sequence[int] | None
) -> dict[int, tuple[float, ...]]:
    """Raw samples grouped by the process they came from, in the order of the processes'
    first samples; without processes every sample is process 0's."""
    if processes is None:
        return {0: tuple(samples)} if samples else {}
    out: dict[int, list[float]] = {}
    for value, process in zip(samples, processes, strict=True):
        out.setdefault(process, []).append(value)
    return {p: tuple(v) for p, v in out.items()}


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
        _one_of(self.status, RESULT_STATUSES, f"{self.case.label}: status")
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
        _one_of(self.trigger, TRIGGERS, "trigger")
        _one_of(self.profile, PROFILES, "profile")
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
        _one_of(self.status, RUN_STATUSES[1:], "run status")
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
