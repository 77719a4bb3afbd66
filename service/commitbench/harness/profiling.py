"""Profiles captured after timing, never during it, and NVTX ranges named by case.

With `--trace`, the worker calls `capture` once a case's timed loops are done and its
metrics are taken: every function the case gave `ctx.time` runs `iterations` more times,
in order, under torch.profiler (CPU activity; CUDA too once the process uses CUDA), each
inside a `record_function` range named `commitbench::<ctx.time name>`. What the
profiler saw becomes an operator/kernel table (model/profile.py) and `profile.*` metrics.
On CUDA two more iterations run with the allocator's history recorded (Python stacks
only, which is cheap) for the peak allocated and reserved memory and the allocation
sites alive at the peak. The timings already recorded are not touched.

NVTX: `nvtx_range(name)` wraps each case and each `ctx.time` so `nsys profile commitbench
run ...` shows them by name; it is a no-op unless torch is loaded with CUDA available.

torch is imported inside functions only (harness/ is the one layer allowed to).
"""

from __future__ import annotations

import bisect
import gzip
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commitbench.model import profile as names
from commitbench.model.metrics import MetricRecord

RANGE = "commitbench::"  # record_function ranges of ours, left out of the tables
MAX_SITES = 10  # allocation sites kept at the peak
MEMORY_ITERATIONS = 2  # iterations run with the allocator's history on (CUDA)
MEMORY_ENTRIES = 200_000  # allocator history entries kept (a ring buffer)

Timed = Sequence[tuple[str, Callable[[], object]]]


def _nvtx() -> Any | None:
    """torch.cuda.nvtx when it can work here, else None (CPU builds raise on use)."""
    torch = sys.modules.get("torch")
    if torch is None or torch.version.cuda is None:
        return None
    try:
        return torch.cuda.nvtx if torch.cuda.is_available() else None
    except Exception:  # a broken driver: no ranges, the case still runs
        return None


@contextmanager
def nvtx_range(name: str) -> Iterator[None]:
    """An NVTX range named `name` around the block when CUDA is available; else nothing."""
    nvtx = _nvtx()
    if nvtx is None:
        yield
        return
    nvtx.range_push(name)
    try:
        yield
    finally:
        nvtx.range_pop()


@dataclass(frozen=True)
class Capture:
    """What one case's capture produced."""

    metrics: tuple[MetricRecord, ...]
    capture_s: float
    files: Mapping[str, Path] = field(default_factory=dict)  # kind -> file written


def _cuda_in_use() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def _union_s(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of [start, end] intervals given in microseconds."""
    busy, until = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= until:
            continue
        busy += end - max(start, until)
        until = end
    return busy / 1e6


def _metric(name: str, value: float, unit: str, **properties: Any) -> MetricRecord:
    return MetricRecord.from_samples(name, [value], unit=unit, properties=properties)


@dataclass
class _Part:
    """What the profiler saw inside one timed function's ranges, over every iteration."""

    cpu: list[tuple[str, int, float]] = field(default_factory=list)
    kernels: list[tuple[str, int, float]] = field(default_factory=list)
    busy: list[tuple[float, float]] = field(default_factory=list)  # kernel intervals, µs
    op_calls: int = 0
    host_s: float = 0.0  # wall time to call it, summed over the iterations

    def add(self, other: _Part) -> None:
        self.cpu += other.cpu
        self.kernels += other.kernels
        self.busy += other.busy
        self.op_calls += other.op_calls
        self.host_s += other.host_s


def _split(prof: Any, parts: dict[str, _Part], cuda: bool) -> None:
    """Each event to the part whose `commitbench::` range it started in (the ranges of
    one thread never overlap; on CUDA each part ends with a synchronize inside its
    range, so its kernels ran inside it too)."""
    from torch.profiler import DeviceType

    events = prof.events()
    ranges = sorted(
        (e.time_range.start, e.time_range.end, e.name[len(RANGE) :])
        for e in events
        if e.name.startswith(RANGE) and e.device_type == DeviceType.CPU
    )
    starts = [r[0] for r in ranges]
    for evt in events:
        if evt.name.startswith(RANGE):
            continue
        start, end = evt.time_range.start, evt.time_range.end
        at = bisect.bisect_right(starts, start) - 1
        if at < 0 or start > ranges[at][1] or ranges[at][2] not in parts:
            continue  # outside every range: the profiler's own work
        part = parts[ranges[at][2]]
        if evt.device_type == DeviceType.CPU:
            part.cpu.append((evt.name, 1, evt.self_cpu_time_total / 1e6))
            part.op_calls += "::" in evt.name
        elif cuda and evt.device_type == DeviceType.CUDA:
            part.kernels.append((evt.name, 1, (end - start) / 1e6))
            part.busy.append((start, end))


def _part_metrics(part: _Part, iterations: int, cuda: bool, prefix: str) -> list[MetricRecord]:
    """The metrics of one part (prefix `profile.<name>.`) or of the case (`profile.`)."""

    def named(metric: str) -> str:
        return prefix + metric.removeprefix(names.PREFIX)

    source = "cuda" if cuda else "cpu"
    table = names.op_table(part.kernels if cuda else part.cpu, iterations, source)
    host = part.host_s / iterations
    out = [
        _metric(
            named(names.TIME_PER_ITER),
            table.total_s,
            "s",
            table=table.to_json(),
            what="device time of kernels" if cuda else "self CPU time of operators",
        ),
        _metric(named(names.HOST_PER_ITER), host, "s", what="wall time to issue one iteration"),
        _metric(named(names.OPS_PER_ITER), part.op_calls / iterations, "count"),
    ]
    for cat, share in table.shares().items():
        out.append(_metric(named(names.share_metric(cat)), 100.0 * share, "%"))
    if cuda:
        device = _union_s(part.busy) / iterations
        out.append(_metric(named(names.DEVICE_PER_ITER), device, "s", what="GPU busy (union)"))
        out.append(_metric(named(names.LAUNCHES_PER_ITER), len(part.kernels) / iterations, "count"))
        if device > 0:
            out.append(_metric(named(names.HOST_OVER_DEVICE), host / device, "ratio"))
    return out


def _site(frames: Sequence[Mapping[str, Any]]) -> str:
    """The first frame outside torch and commitbench's harness (the caller's code)."""
    for frame in frames:
        filename = str(frame.get("filename", ""))
        if "/torch/" in filename or "/commitbench/harness/" in filename or not filename:
            continue
        return f"{os.path.basename(filename)}:{frame.get('line', '?')} {frame.get('name', '?')}"
    if frames:
        first = frames[0]
        return f"{os.path.basename(str(first.get('filename', '?')))}:{first.get('line', '?')}"
    return "(no Python stack: the autograd engine or C++)"


def peak_sites(
    trace: Sequence[Mapping[str, Any]], limit: int = MAX_SITES
) -> tuple[int, list[tuple[str, int]]]:
    """Replay an allocator trace (torch.cuda.memory._snapshot()["device_traces"][i]):
    the most bytes allocated at once by what the trace saw allocated, and the sites of
    the blocks alive at that moment, summed by site, largest first."""
    live: dict[int, tuple[int, str]] = {}
    current = peak = 0
    at_peak: dict[int, tuple[int, str]] = {}
    for entry in trace:
        action = entry.get("action")
        if action == "alloc":
            size = int(entry["size"])
            live[int(entry["addr"])] = (size, _site(entry.get("frames") or ()))
            current += size
            if current > peak:
                peak, at_peak = current, dict(live)
        elif action == "free_completed":
            gone = live.pop(int(entry["addr"]), None)
            if gone is not None:
                current -= gone[0]
    by_site: dict[str, int] = {}
    for size, site in at_peak.values():
        by_site[site] = by_site.get(site, 0) + size
    ranked = sorted(by_site.items(), key=lambda kv: (-kv[1], kv[0]))
    return peak, ranked[:limit]


def _memory_metrics(
    timed: Timed, out_dir: Path | None, stem: str
) -> tuple[list[MetricRecord], dict[str, Path]]:
    import torch

    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.memory._record_memory_history(
        enabled="all", context="alloc", stacks="python", max_entries=MEMORY_ENTRIES
    )
    try:
        # Two iterations: what one iteration leaves alive into the next (a leak, an
        # activation kept) is then seen at the peak with the site that allocated it.
        for _ in range(MEMORY_ITERATIONS):
            for name, fn in timed:
                with torch.profiler.record_function(RANGE + name):
                    fn()
        torch.cuda.synchronize()
        snapshot = torch.cuda.memory._snapshot()
    finally:
        torch.cuda.memory._record_memory_history(enabled=None)
    device = torch.cuda.current_device()
    traces = snapshot.get("device_traces") or []
    _, sites = peak_sites(traces[device] if device < len(traces) else [])
    mib = 2**20
    props = {
        "before_mib": before / mib,
        "sites": [{"site": site, "mib": size / mib} for site, size in sites],
        "what": f"max_memory_allocated over {MEMORY_ITERATIONS} iterations; sites: blocks "
        "allocated in them and alive at their peak (before_mib were alive before them)",
    }
    files: dict[str, Path] = {}
    if out_dir is not None:
        import pickle

        path = out_dir / f"{stem}.memory.pickle.gz"
        with gzip.open(path, "wb", compresslevel=6) as fh:
            pickle.dump(snapshot, fh)
        files["memory_snapshot"] = path
    metrics = [
        _metric(names.PEAK_ALLOCATED, torch.cuda.max_memory_allocated() / mib, "MiB", **props),
        _metric(names.PEAK_RESERVED, torch.cuda.max_memory_reserved() / mib, "MiB"),
    ]
    return metrics, files


def capture(
    timed: Timed,
    iterations: int,
    *,
    out_dir: Path | None = None,
    stem: str = "case",
    clock: Callable[[], float] = time.perf_counter,
) -> Capture:
    """Run each of `timed` `iterations` times under torch.profiler and reduce what it saw.

    `out_dir`: where the gzipped Chrome trace (and on CUDA the memory snapshot) are
    written, as `<stem>.trace.json.gz` and `<stem>.memory.pickle.gz`; None writes none.
    """
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    t0 = clock()
    if not timed:
        return Capture((), clock() - t0)
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    cuda = _cuda_in_use()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    parts = {name: _Part() for name, _ in timed}
    if cuda:
        torch.cuda.synchronize()
    with profile(activities=activities) as prof:
        for _ in range(iterations):
            for name, fn in timed:
                with record_function(RANGE + name):
                    started = clock()
                    fn()
                    parts[name].host_s += clock() - started
                    if cuda:
                        torch.cuda.synchronize()
    with warnings.catch_warnings():  # "Profiler clears events at the end of each cycle"
        warnings.simplefilter("ignore", UserWarning)
        _split(prof, parts, cuda)
    whole = _Part()
    for part in parts.values():
        whole.add(part)
    metrics = _part_metrics(whole, iterations, cuda, names.PREFIX)
    if len(parts) > 1:  # each timed function on its own too: profile.<name>.*
        for name, part in parts.items():
            metrics += _part_metrics(part, iterations, cuda, names.part_prefix(name))
    files: dict[str, Path] = {}
    if out_dir is not None:
        files["chrome_trace"] = _chrome_trace(prof, out_dir / f"{stem}.trace.json.gz")
    if cuda:
        memory, written = _memory_metrics(timed, out_dir, stem)
        metrics += memory
        files.update(written)
    spent = clock() - t0
    return Capture(tuple(metrics), spent, files)


def _chrome_trace(prof: Any, target: Path) -> Path:
    """The profiler's Chrome trace, gzipped (it compresses about tenfold)."""
    with tempfile.TemporaryDirectory(prefix="commitbench-trace-") as tmp:
        raw = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(raw))
        with raw.open("rb") as src, gzip.open(target, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst)
    return target
