"""One case run in the worker's process: its requirements checked, the bench function
called with its Context, and every way it can end turned into a result. Failures inside
a case are caught here: an exception is `failed` with its traceback, `MemoryError` and
torch's CUDA out-of-memory error are `oom`, `ctx.skip()` and unmet requirements are
`skipped`. With --trace, an ok case's timed functions then run under the profiler.

Separate from the worker's main loop (worker.py), which decides what runs and speaks the
protocol; `run_case` never raises for the bench and is called by tests directly.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from commitbench.harness import profiling
from commitbench.harness.bench import Bench, Skipped
from commitbench.harness.casemetrics import memory_metrics, reset_peak_rss, state_metrics
from commitbench.harness.context import Context
from commitbench.harness.probe import Probe, cuda_initialized
from commitbench.model.cases import CaseKey
from commitbench.model.profile import TIME_PER_ITER, artifact_stem
from commitbench.model.records import ResultRecord, Window, utcnow
from commitbench.model.text import storable

MAX_ERROR_CHARS = 8000


def tail(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """The end of an error text, with what no store can hold escaped (a NUL in an
    exception's message is kept as `\\x00`, not refused)."""
    return storable(text if len(text) <= limit else "...\n" + text[-limit:])


def _is_cuda_oom(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)


def run_case(
    spec: Bench,
    case: CaseKey,
    profile: str,
    probe: Probe,
    *,
    clock: Callable[[], float] = time.perf_counter,
    quick: bool = False,
    trace: int = 0,
    trace_dir: Path | None = None,
) -> tuple[ResultRecord, tuple[Window, ...]]:
    """Run one case in this process and return its result; never raises for the bench.

    `trace` > 0: once the case is timed and its metrics taken, its timed functions run
    that many more iterations under the profiler (harness/profiling.py), which adds the
    `profile.*` metrics; the case's duration does not include them."""
    started = utcnow()
    t0 = clock()
    reason = probe.missing(spec.requires)
    if reason is not None:
        return ResultRecord(case, "skipped", reason, clock() - t0, started), ()
    ctx = Context(case, profile, probe=probe, policy=spec.policy, clock=clock, quick=quick)
    if cuda_initialized():
        import torch

        torch.cuda.reset_peak_memory_stats()
    rss_reset = reset_peak_rss()
    status, error = "ok", None
    try:
        with profiling.nvtx_range(case.label):
            spec.fn(ctx, **case.params_dict)
    except Skipped as skip:
        status, error = "skipped", tail(str(skip)) or "skipped by the bench"
    except MemoryError:
        status, error = "oom", tail(traceback.format_exc())
    except (Exception, SystemExit) as exc:
        status = "oom" if _is_cuda_oom(exc) else "failed"
        error = tail(traceback.format_exc())
    if status == "oom" and cuda_initialized():
        import torch

        torch.cuda.empty_cache()
    metrics = (*ctx.metrics, *memory_metrics(ctx, rss_reset)) if status == "ok" else ()
    if ctx.used:  # what the case actually used (ctx.note) travels with each metric
        metrics = tuple(
            dataclasses.replace(m, properties={**m.properties, "used": ctx.used}) for m in metrics
        )
    if status == "ok" and not quick:  # the machine's, not the case's: no `used`
        metrics = (*metrics, *state_metrics(ctx))
    result = ResultRecord(case, status, error, clock() - t0, started, metrics)
    if trace > 0 and status == "ok" and ctx.timed:
        result = _traced(result, ctx, trace, trace_dir)
    return result, ctx.windows


def _traced(result: ResultRecord, ctx: Context, iterations: int, out: Path | None) -> ResultRecord:
    """The result with its profile's metrics; a profile that fails is said on stderr
    (the worker's log) and leaves the measured result as it was."""
    stem = artifact_stem(result.case.label)
    try:
        with profiling.nvtx_range(f"{result.case.label}/profile"):
            got = profiling.capture(ctx.timed, iterations, out_dir=out, stem=stem)
    except Exception:
        print(
            f"profile of {result.case.label} failed:\n{tail(traceback.format_exc())}",
            file=sys.stderr,
        )
        return result
    taken = {m.name for m in result.metrics}
    extra = tuple(
        dataclasses.replace(m, properties={**m.properties, "capture_s": got.capture_s})
        if m.name == TIME_PER_ITER
        else m
        for m in got.metrics
        if m.name not in taken
    )
    return dataclasses.replace(result, metrics=(*result.metrics, *extra))
