"""One case measured in k fresh worker processes (`--processes`, issue 13) as one
result: the samples of every process, each tagged with its process.

Separate from the runner's loop (measure.py), which calls it once a module's passes
have ended: a pure function of results, tested on its own (tests/test_processes.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from commitbench.model.metrics import MetricRecord
from commitbench.model.records import ResultRecord
from commitbench.model.stats import Stats


def merge_processes(results: Sequence[ResultRecord]) -> ResultRecord:
    """One case's results from k worker processes as one result: each metric's samples
    concatenated in process order, each sample tagged with its process (0, 1, ...), and
    the summary recomputed. A process that did not finish ok makes the result that
    status, with the process named in the error (what it measured is not split off)."""
    first = results[0]
    for i, r in enumerate(results):
        if r.status != "ok":
            named = r.error and r.status != "skipped"
            return replace(
                r,
                error=f"process {i + 1} of {len(results)}: {r.error}" if named else r.error,
                duration_s=_total(results),
                started_at=first.started_at,
            )
    metrics = []
    for m in first.metrics:
        same = [x for r in results for x in r.metrics if x.name == m.name]
        if len(same) != len(results):
            continue  # not measured in every process: not comparable across them
        if all(x.samples is not None for x in same):
            samples = [s for x in same for s in (x.samples or ())]
            processes = [i for i, x in enumerate(same) for _ in x.samples or ()]
            if samples:
                metrics.append(
                    MetricRecord.from_samples(
                        m.name,
                        samples,
                        unit=m.unit,
                        direction=m.direction,
                        properties=m.properties,
                        processes=processes,
                    )
                )
                continue
        metrics.append(_merged_summary(same))
    return replace(
        first,
        duration_s=_total(results),
        metrics=tuple(metrics),
        device_samples=tuple(s for r in results for s in r.device_samples),
    )


def _total(results: Sequence[ResultRecord]) -> float | None:
    durations = [r.duration_s for r in results if r.duration_s is not None]
    return sum(durations) if durations else None


def _merged_summary(same: Sequence[MetricRecord]) -> MetricRecord:
    """A metric kept without samples (a sampler's summary): the median of the processes'
    medians, the extremes of their extremes, nothing claimed about spread."""
    first = same[0]
    medians = [x.median for x in same if x.median is not None]
    means = [x.mean for x in same if x.mean is not None]
    lows = [x.min for x in same if x.min is not None]
    highs = [x.max for x in same if x.max is not None]
    return MetricRecord(
        name=first.name,
        unit=first.unit,
        direction=first.direction,
        n=sum(x.n for x in same),
        mean=sum(means) / len(means) if len(means) == len(same) else None,
        median=Stats.of(medians).median if medians else None,
        min=min(lows) if lows else None,
        max=max(highs) if highs else None,
        properties=first.properties,
    )
