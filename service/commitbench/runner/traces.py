"""The runner's side of `--trace` files: workers write each traced case's Chrome trace
(and CUDA memory snapshot) into a folder of the runner's; after each result the runner
takes them, names them by sha256 in the result's `profile.time_per_iter` metric, and
once the result is written keeps them in the store beside it (store/artifacts.py).

A store that cannot keep them (the database lost) costs the files, with a warning, never
the measured result.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from commitbench.model.profile import TIME_PER_ITER, artifact_stem
from commitbench.model.records import ResultRecord
from commitbench.store import artifacts
from commitbench.store.engine import DB_LOST

log = logging.getLogger(__name__)


class Traces:
    """The trace files of one commit's workers, in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pending: list[artifacts.Artifact] = []

    def attach(self, result: ResultRecord) -> ResultRecord:
        """The result naming the files its worker left; they wait for `save`."""
        stem = artifact_stem(result.case.label)
        found: dict[str, str] = {}
        for kind, extension in artifacts.EXTENSIONS.items():
            path = self.folder / f"{stem}{extension}"
            if not path.is_file():
                continue
            item = artifacts.Artifact.of(kind, result.case.label, path.read_bytes())
            path.unlink()
            if not any(m.name == TIME_PER_ITER for m in result.metrics):
                continue  # no profile to name it (the case failed after writing it)
            self.pending.append(item)
            found[kind] = item.sha256
        if not found:
            return result
        metrics = tuple(
            dataclasses.replace(m, properties={**m.properties, artifacts.REFERENCE: found})
            if m.name == TIME_PER_ITER
            else m
            for m in result.metrics
        )
        return dataclasses.replace(result, metrics=metrics)

    def save(self, store: object, run_id: uuid.UUID | None, spooled_to: Path | None) -> None:
        """Keep what is pending beside the run: in the CSV spool when the results went
        there, else in `store`."""
        pending, self.pending = self.pending, []
        if not pending or run_id is None:
            return
        where = (
            artifacts.CsvArtifacts(spooled_to.parent)
            if spooled_to is not None
            else artifacts.artifacts_of(store)
        )
        try:
            where.save(run_id, pending)
        except DB_LOST as err:
            log.warning(
                "%d profile files of run %s not stored: the database was lost (%s)",
                len(pending),
                run_id,
                type(err).__name__,
            )


@contextmanager
def traced(iterations: int) -> Iterator[Traces | None]:
    """A folder for the workers' trace files while a commit is measured (None without
    --trace); removed afterwards with whatever is left in it."""
    if iterations <= 0:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="commitbench-traces-") as folder:
        yield Traces(Path(folder))
