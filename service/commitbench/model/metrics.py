"""A metric of a result: its raw samples (with the process each came from), their
summary, its unit and direction, validated on construction. Apart from records.py
because it is the record that carries statistics: every summary the stores keep is
computed here, from model/stats.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from commitbench.model import checks
from commitbench.model.checks import INT4, RecordError
from commitbench.model.stats import Stats
from commitbench.model.words import plural

DIRECTIONS = ("lower", "higher")


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
        checks.one_of(self.direction, DIRECTIONS, f"metric {self.name}: direction")
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
