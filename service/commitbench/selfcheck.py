"""The self-check run: a few pure-Python workloads timed in this process.

It exercises the whole recording path (machine, commit, run, results, metrics with raw
samples, failover) with no torch, no GPU and no child process, so `make run` proves an
installation in seconds. The runner issue replaces it with real bench modules.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from commitbench.recorder import MetricsRecorder
from commitbench.records import CaseKey, MetricRecord, ResultRecord, RunHeader, utcnow
from commitbench.store import Store

WARMUP = 3


@dataclass(frozen=True)
class Workload:
    name: str
    size: int
    fn: Callable[[int], object]


def _sum_range(n: int) -> object:
    return sum(range(n))


def _sort(n: int) -> object:
    # A fixed permutation (multiplicative hash), so every run sorts the same input.
    return sorted((i * 2654435761) % 2**32 for i in range(n))


def _json_roundtrip(n: int) -> object:
    return json.loads(json.dumps([{"i": i, "s": str(i)} for i in range(n)]))


WORKLOADS = (
    Workload("commitbench.selfcheck.sum_range", 100_000, _sum_range),
    Workload("commitbench.selfcheck.sort", 20_000, _sort),
    Workload("commitbench.selfcheck.json_roundtrip", 2_000, _json_roundtrip),
)


def measure(
    w: Workload, repeat: int, clock: Callable[[], float] = time.perf_counter
) -> ResultRecord:
    started = utcnow()
    t0 = clock()
    for _ in range(WARMUP):
        w.fn(w.size)
    samples = []
    for _ in range(repeat):
        begin = clock()
        w.fn(w.size)
        samples.append(clock() - begin)
    rss = psutil.Process().memory_info().rss / 2**20
    return ResultRecord(
        case=CaseKey.of(w.name, {"n": w.size}),
        status="ok",
        duration_s=clock() - t0,
        started_at=started,
        metrics=(
            MetricRecord.from_samples(
                "time",
                samples,
                unit="s",
                direction="lower",
                properties={"warmup": WARMUP, "timer": "perf_counter"},
            ),
            MetricRecord.from_samples("rss", [rss], unit="MiB", direction="lower"),
        ),
    )


def run(repeat: int) -> Iterator[ResultRecord]:
    for w in WORKLOADS:
        yield measure(w, repeat)


@dataclass(frozen=True)
class Outcome:
    run_id: str
    status: str
    location: str
    results: tuple[ResultRecord, ...]
    spooled_to: str | None


def record(
    store: Store,
    header: RunHeader,
    *,
    repeat: int,
    spool: Path | None,
    on_result: Callable[[ResultRecord], None] = lambda r: None,
) -> Outcome:
    """Measure the self-check workloads and record each as its own unit."""
    recorder = MetricsRecorder(store, header, spool=spool)
    done = []
    with recorder:
        for result in run(repeat):
            recorder.add(result)
            recorder.flush()
            done.append(result)
            on_result(result)
        status = recorder.close()
    return Outcome(
        run_id=str(header.run.id),
        status=status,
        location=recorder.location,
        results=tuple(done),
        spooled_to=str(recorder.spooled_to) if recorder.spooled_to else None,
    )
