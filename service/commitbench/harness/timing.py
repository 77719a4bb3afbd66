"""Timers and the adaptive repeat loop behind `Context.time`.

A measurement is: warm-up calls (not kept), then timed repeats, every raw sample kept.

Warm-up runs to a steady state unless a fixed count is asked for (`warmup=N`): at least
`steady_min_s` seconds of calls (caches, allocators, JIT and autotuning, GPU clocks
ramping), then timed windows of `steady_window` calls until the median of a window is
within `steady_rel` of the previous window's median, bounded by `steady_max_s` (the
reason is kept as `warmup_stop`: steady, limit, or slow when a single call takes over a
quarter of the bound). A fixed number of warm-up calls is what issue 13 measured as not
enough: a process's first hundreds of milliseconds can run several percent off its
steady state (Kalibera & Jones 2013 call this the initialisation phase; Barrett et al.,
"Virtual Machine Warmup Blows Hot and Cold", OOPSLA 2017, show that a steady state is not
guaranteed, hence the bound).
On CPU each repeat is bracketed by `perf_counter` (injectable). On a GPU each repeat is
bracketed by a pair of CUDA events recorded on the current stream, and the host waits for
the device (`torch.cuda.synchronize`) once per batch before reading them, so the samples
are device time and the host never measures only the kernel launch (unsynchronised wall
time of an 8192^3 bf16 matmul reads 0.013 ms instead of 1.57 ms on an H100).

Without a fixed `repeat`, repeats run in doubling batches until the 95% CI of the median
(stats.py) is narrower than `target_rel_ci` of the median, or the time budget or
`max_repeat` is reached; the reason it stopped is kept with the metric.

The optional L2 flush (GPU only) writes a 256 MB buffer before each repeat, outside the
event pair, as `triton.testing.do_bench` does, so each repeat starts with a cold L2.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from commitbench.model.metrics import MetricRecord
from commitbench.model.stats import Stats

Clock = Callable[[], float]

# The size triton.testing.do_bench zeroes between repeats; larger than any current L2.
L2_FLUSH_BYTES = 256 * 10**6


class Timer(Protocol):
    """Times `n` calls of `fn`, one sample (seconds) per call."""

    name: str
    flushes_l2: bool

    def sync(self) -> None:
        """Wait until all work issued so far has finished."""

    def time(self, fn: Callable[[], object], n: int, *, l2_flush: bool) -> list[float]: ...


class CpuTimer:
    """Host wall time around each call; nothing to flush."""

    name = "perf_counter"
    flushes_l2 = False

    def __init__(self, clock: Clock = time.perf_counter) -> None:
        self._clock = clock

    def sync(self) -> None:
        return None

    def time(self, fn: Callable[[], object], n: int, *, l2_flush: bool) -> list[float]:
        clock = self._clock
        samples = []
        for _ in range(n):
            begin = clock()
            fn()
            samples.append(clock() - begin)
        return samples


class CudaTimer:
    """CUDA events around each call on the current stream (imports torch lazily)."""

    name = "cuda_event"
    flushes_l2 = True

    def __init__(self) -> None:
        import torch

        self._torch = torch
        self._flush_buffer: Any = None

    def sync(self) -> None:
        self._torch.cuda.synchronize()

    def _flush(self) -> None:
        if self._flush_buffer is None:
            self._flush_buffer = self._torch.empty(
                L2_FLUSH_BYTES // 4, dtype=self._torch.int32, device="cuda"
            )
        self._flush_buffer.zero_()

    def time(self, fn: Callable[[], object], n: int, *, l2_flush: bool) -> list[float]:
        cuda = self._torch.cuda
        starts = [cuda.Event(enable_timing=True) for _ in range(n)]
        ends = [cuda.Event(enable_timing=True) for _ in range(n)]
        cuda.synchronize()
        for start, end in zip(starts, ends, strict=True):
            if l2_flush:
                self._flush()
            start.record()
            fn()
            end.record()
        cuda.synchronize()
        return [s.elapsed_time(e) / 1e3 for s, e in zip(starts, ends, strict=True)]


@dataclass(frozen=True)
class TimingPolicy:
    """How long to warm up and when to stop repeating."""

    warmup: int | None = None  # None: to a steady state (module docstring); N: N calls
    warmup_s: float = 0.0  # and at least this long, either way
    steady_min_s: float = 0.1
    steady_max_s: float = 2.0
    steady_rel: float = 0.02
    steady_window: int = 8
    repeat: int | None = None
    min_repeat: int = 10
    max_repeat: int = 10_000
    budget_s: float = 1.0
    target_rel_ci: float = 0.01

    def __post_init__(self) -> None:
        if (self.warmup is not None and self.warmup < 0) or self.warmup_s < 0:
            raise ValueError("warmup must be >= 0")
        if self.steady_window < 1 or not 0 <= self.steady_min_s <= self.steady_max_s:
            raise ValueError("need steady_window >= 1 and 0 <= steady_min_s <= steady_max_s")
        if self.repeat is not None and self.repeat < 1:
            raise ValueError("repeat must be >= 1")
        if not 1 <= self.min_repeat <= self.max_repeat:
            raise ValueError("need 1 <= min_repeat <= max_repeat")
        if self.budget_s < 0 or self.target_rel_ci < 0:
            raise ValueError("budget_s and target_rel_ci must be >= 0")


@dataclass(frozen=True)
class Timing:
    """The raw samples of one `ctx.time` and how they were taken."""

    samples: tuple[float, ...]
    warmup: int
    timer: str
    stop: str  # "repeat", "ci", "budget" or "max_repeat"
    l2_flush: bool
    warmup_stop: str = "count"  # "count", "steady", "limit" or "slow"

    @property
    def stats(self) -> Stats:
        return Stats.of(self.samples)

    @property
    def calls(self) -> int:
        return self.warmup + len(self.samples)

    def properties(self) -> dict[str, Any]:
        return {
            "timer": self.timer,
            "warmup": self.warmup,
            "l2_flush": self.l2_flush,
            "stop": self.stop,
            "warmup_stop": self.warmup_stop,
        }


def rel_ci_width(samples: Sequence[float]) -> float:
    """Width of the median's 95% CI relative to the median; inf while undefined."""
    stats = Stats.of(samples)
    ci = stats.median_ci
    if ci is None:
        return math.inf
    width = ci[1] - ci[0]
    if stats.median <= 0:
        return 0.0 if width == 0 else math.inf
    return width / stats.median


def measure(
    fn: Callable[[], object],
    *,
    policy: TimingPolicy,
    timer: Timer,
    clock: Clock = time.perf_counter,
    l2_flush: bool = False,
) -> Timing:
    """Warm up, then repeat `fn` under `policy`; see the module docstring."""
    flush = l2_flush and timer.flushes_l2
    warm, warmed = warm_up(fn, policy=policy, timer=timer, clock=clock, l2_flush=flush)
    if policy.repeat is not None:
        samples = timer.time(fn, policy.repeat, l2_flush=flush)
        return Timing(tuple(samples), warm, timer.name, "repeat", flush, warmed)

    start = clock()
    samples = []
    batch = policy.min_repeat
    while True:
        samples.extend(timer.time(fn, batch, l2_flush=flush))
        n = len(samples)
        elapsed = clock() - start
        if rel_ci_width(samples) <= policy.target_rel_ci:
            stop = "ci"
        elif n >= policy.max_repeat:
            stop = "max_repeat"
        elif elapsed >= policy.budget_s:
            stop = "budget"
        else:
            # Double, but do not plan past the budget at the pace seen so far.
            per_call = elapsed / n
            fits = math.ceil((policy.budget_s - elapsed) / per_call) if per_call > 0 else n
            batch = max(1, min(n, policy.max_repeat - n, fits))
            continue
        return Timing(tuple(samples), warm, timer.name, stop, flush, warmed)


def warm_up(
    fn: Callable[[], object],
    *,
    policy: TimingPolicy,
    timer: Timer,
    clock: Clock = time.perf_counter,
    l2_flush: bool = False,
) -> tuple[int, str]:
    """The warm-up calls of the module docstring: how many, and why they stopped."""
    fixed = policy.warmup is not None
    count = policy.warmup if policy.warmup is not None else 1
    minimum_s = policy.warmup_s if fixed else max(policy.warmup_s, policy.steady_min_s)
    t0 = clock()
    warm = 0
    while warm < count or clock() - t0 < minimum_s:
        fn()
        warm += 1
        if minimum_s:
            timer.sync()
    if fixed:
        return warm, "count"
    per_call = (clock() - t0) / warm if warm else 0.0
    if per_call > policy.steady_max_s / 4:
        return warm, "slow"
    previous: float | None = None
    while True:
        median = Stats.of(timer.time(fn, policy.steady_window, l2_flush=l2_flush)).median
        warm += policy.steady_window
        if previous is not None and abs(median - previous) <= policy.steady_rel * abs(previous):
            return warm, "steady"
        if clock() - t0 >= policy.steady_max_s:
            return warm, "limit"
        previous = median


def throughput_metrics(
    name: str,
    timing: Timing,
    *,
    flops: float | None = None,
    bytes: float | None = None,
    peak_tflops: float | None = None,
    peak_source: str | None = None,
) -> tuple[MetricRecord, ...]:
    """TFLOP/s, % of dense peak and GB/s, one value per raw time sample."""
    if any(s <= 0 for s in timing.samples):
        return ()  # a zero-length sample has no finite rate
    props = timing.properties()
    out = []
    if flops is not None:
        tflops = [flops / s / 1e12 for s in timing.samples]
        out.append(
            MetricRecord.from_samples(
                f"{name}.tflops",
                tflops,
                unit="TFLOP/s",
                direction="higher",
                properties={**props, "flops": flops},
            )
        )
        if peak_tflops:
            out.append(
                MetricRecord.from_samples(
                    f"{name}.peak_pct",
                    [100.0 * t / peak_tflops for t in tflops],
                    unit="%",
                    direction="higher",
                    properties={**props, "peak_tflops": peak_tflops, "peak": peak_source},
                )
            )
    if bytes is not None:
        out.append(
            MetricRecord.from_samples(
                f"{name}.gbps",
                [bytes / s / 1e9 for s in timing.samples],
                unit="GB/s",
                direction="higher",
                properties={**props, "bytes": bytes},
            )
        )
    return tuple(out)
