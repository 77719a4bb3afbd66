"""Measurements as the analysis reads them back: flat points and per-commit series.

A Point is one metric of one ok result: the commit, the machine, branch and profile of
its run, and the raw samples. Both stores return points (store.base.ReadStore), and
compare, check, detect, bisect and report work on them, so the analysis never touches a
database. A Series is one case's metric over commits on one machine and profile.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Point:
    repository: str
    sha: str
    committed_at: datetime | None
    subject: str | None
    machine: str  # fingerprint
    machine_label: str
    branch: str | None
    profile: str
    run_id: uuid.UUID | None  # None: measured but not recorded (check's fresh samples)
    run_started_at: datetime
    case: str
    metric: str
    unit: str
    direction: str
    median: float | None
    ci_low: float | None
    ci_high: float | None
    samples: tuple[float, ...]


@dataclass(frozen=True)
class PointFilter:
    """Which points to read; None means any."""

    repository: str | None = None
    shas: Sequence[str] | None = None
    case: str | None = None
    metric: str | None = None
    machine: str | None = None  # fingerprint


ANY = PointFilter()  # every point


@dataclass(frozen=True)
class Series:
    repository: str
    case: str
    metric: str
    machine_label: str
    machine: str  # fingerprint
    branch: str | None
    profile: str
    unit: str
    direction: str
    shas: tuple[str, ...]
    subjects: tuple[str, ...]
    times: tuple[datetime | None, ...]
    medians: tuple[float, ...]
    ci_low: tuple[float | None, ...]
    ci_high: tuple[float | None, ...]

    @property
    def title(self) -> str:
        return f"{self.case} · {self.metric}"


@dataclass(frozen=True)
class Step:
    """A change point that `detect` found in a series, as the regressions table keeps it."""

    index: int  # first commit of the new level in the series
    before: float
    after: float
    change: float  # after / before - 1
    p_value: float
    method: str
    fixed: bool  # a later step brought the level back


def machine_label(gpu_name: str | None, gpu_count: int, cpu_model: str | None) -> str:
    """How a machine is named to people: its GPU (with the count), else its CPU model."""
    if gpu_name:
        return f"{gpu_count}x {gpu_name}" if gpu_count > 1 else gpu_name
    return cpu_model or "unknown machine"
