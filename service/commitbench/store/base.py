"""What the rest of commitbench needs of a store, as two protocols.

`Store` is the write side (MetricsRecorder: one atomic unit per call); `ReadStore` is the
read side (compare, check, detect, bisect, report, export). PostgreSQL (store.sql) and
CSV (store.csv) implement both, so no caller asks which kind of store it holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from commitbench.model.points import ANY, Point, PointFilter, Series, SeriesPoint, Step
from commitbench.model.records import RecordedKey, ResultRecord, RunData, RunEnd, RunHeader


class Store(Protocol):
    """What MetricsRecorder needs of a store. Each call is one atomic unit."""

    @property
    def location(self) -> str: ...

    def open_run(self, header: RunHeader) -> None: ...

    def write_unit(self, run_id: uuid.UUID, results: Sequence[ResultRecord]) -> int: ...

    def finish_run(self, run_id: uuid.UUID, end: RunEnd) -> bool: ...

    def recorded(self, key: RecordedKey) -> set[str]: ...


class ReadStore(Protocol):
    """What the analysis commands read."""

    @property
    def location(self) -> str: ...

    def points(self, where: PointFilter = ANY) -> list[Point]:
        """Every metric of every ok result that `where` selects, oldest commit first."""
        ...

    def series_points(self, where: PointFilter = ANY) -> list[SeriesPoint]:
        """Each selected commit's value in each series (model.points.SeriesPoint), in
        model.points.series_order: what report, detect, compare and the dashboards show."""
        ...

    def load_run(self, run_id: uuid.UUID) -> RunData:
        """One whole run: header, results with metrics and device samples, end."""
        ...

    def save_regression(self, series: Series, step: Step) -> int | None:
        """Keep a regression `detect` found; its id, or None where the store keeps none."""
        ...
