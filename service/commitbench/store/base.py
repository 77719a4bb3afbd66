"""What the rest of commitbench needs of a store, as two protocols.

`Store` is the write side (MetricsRecorder: one atomic unit per call); `ReadStore` is the
read side (compare, check, detect, bisect, report, export). PostgreSQL (store.sql) and
CSV (store.csv) implement both, so no caller asks which kind of store it holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from commitbench.model.points import ANY, Point, PointFilter, Series, SeriesPoint, Step
from commitbench.model.records import RecordedKey, ResultRecord, RunData, RunEnd, RunHeader


class Store(Protocol):
    """What MetricsRecorder needs of a store. Each call is one atomic unit."""

    @property
    def location(self) -> str: ...

    def open_run(self, header: RunHeader) -> None: ...

    def write_unit(self, run_id: uuid.UUID, results: Sequence[ResultRecord]) -> int: ...

    def take_recorded_elsewhere(self, run_id: uuid.UUID) -> list[str]:
        """The cases of the run's units written since the last call that another run had
        recorded first, so were dropped (store/worklock.py: exactly once across runs)."""
        ...

    def finish_run(self, run_id: uuid.UUID, end: RunEnd) -> bool: ...

    def interrupt_stale(self, fingerprint: str, gone: Callable[[Any], bool]) -> list[uuid.UUID]:
        """Mark `interrupted` the runs of this machine still `running` whose runner
        (their environment's `runner`) `gone` says is dead; their ids."""
        ...

    def recorded(self, key: RecordedKey) -> dict[str, str]:
        """The cases recorded for the key: label -> status of the latest result."""
        ...

    def selections(self, key: RecordedKey) -> list[dict[str, Any]]:
        """The `selection` entries of the environments of the complete (ok or failed, not
        interrupted) runs for the key: what a later run need not measure again."""
        ...


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

    def runs_of(self, repository: str, sha: str) -> list[tuple[RunHeader, set[str]]]:
        """The runs of one commit, oldest first, each with the case labels it has a
        result for (what `show` picks a run by, before it loads that one)."""
        ...

    def save_regression(self, series: Series, step: Step) -> int | None:
        """Keep a regression `detect` found; its id, or None where the store keeps none."""
        ...
