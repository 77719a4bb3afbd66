"""`Context`: what a bench function gets, the profile, the device and the measuring calls
(`ctx.time`, `ctx.record`, `ctx.note`, `ctx.pick`, `ctx.skip`).

Separate from the decorator and the bench's declaration (bench.py): this is the
measuring side, which times with harness/timing.py, counts host time against CPU time
(model/state.py) and records the metrics the worker sends. Nothing here imports torch
until a bench asks for the device or a CUDA timer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from commitbench.harness import peaks, placement, profiling
from commitbench.harness.bench import Skipped
from commitbench.harness.probe import Probe, cuda_initialized
from commitbench.harness.timing import (
    Clock,
    CpuTimer,
    CudaTimer,
    Timer,
    Timing,
    TimingPolicy,
    measure,
)
from commitbench.harness.timing import throughput_metrics as _throughput
from commitbench.model import checks
from commitbench.model.cases import CaseKey, ParamValue
from commitbench.model.metrics import DIRECTIONS, MetricRecord
from commitbench.model.records import PROFILES, Window

T = TypeVar("T")


class _CpuCounted:
    """A host timer that also adds up, around each batch it times, into `spent`: wall and
    CPU time (`time.process_time`, the whole process's: work on other threads reads more
    CPU than wall), and the threads' nanoseconds run and waited for a CPU
    (harness/placement.py). Their ratios are state.wall_per_cpu and state.run_wait_share
    (model/state.py). The threads are read outside the timed calls."""

    def __init__(self, timer: Timer, spent: list[float]) -> None:
        self.name = timer.name
        self.flushes_l2 = timer.flushes_l2
        self._timer = timer
        self._spent = spent  # wall s, CPU s, run ns, wait ns, batches without schedstat

    def sync(self) -> None:
        self._timer.sync()

    def time(self, fn: Callable[[], object], n: int, *, l2_flush: bool) -> list[float]:
        threads0 = placement.thread_times()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        samples = self._timer.time(fn, n, l2_flush=l2_flush)
        self._spent[0] += time.perf_counter() - wall0
        self._spent[1] += time.process_time() - cpu0
        threads1 = placement.thread_times()
        if threads0 is None or threads1 is None:
            self._spent[4] += 1
        else:
            ran, waited = placement.ran_and_waited(threads0, threads1)
            self._spent[2] += ran
            self._spent[3] += waited
        return samples


class Context:
    """What a bench function gets: the profile, the device, and the measuring calls."""

    def __init__(
        self,
        case: CaseKey,
        profile: str,
        *,
        probe: Probe | None = None,
        policy: TimingPolicy | None = None,
        clock: Clock = time.perf_counter,
        wall: Clock = time.time,
        quick: bool = False,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile {profile!r} is not one of {PROFILES}")
        self.case = case
        self.profile = profile
        self._probe = probe or Probe()
        self._policy = policy or TimingPolicy()
        self._clock = clock
        self._wall = wall
        # quick: every ctx.time calls its function once, without warm-up, to check that
        # a bench works (`commitbench run --quick`); such numbers are not recorded.
        self._quick = quick
        self._metrics: dict[str, MetricRecord] = {}
        self._windows: list[Window] = []
        self._used: dict[str, ParamValue] = {}
        # Over the perf_counter-timed batches: wall s, CPU s, threads' run ns and wait ns,
        # batches whose threads could not be read (_CpuCounted).
        self._cpu_timed = [0.0, 0.0, 0.0, 0.0, 0.0]
        # What ctx.time timed, in order: run again under the profiler after the case
        # with --trace (harness/profiling.py), never while it is timed.
        self._timed: list[tuple[str, Callable[[], object]]] = []

    @property
    def params(self) -> dict[str, ParamValue]:
        return self.case.params_dict

    @property
    def device(self) -> str:
        """'cuda' when a GPU is available to this worker, else 'cpu'."""
        return "cuda" if self._probe.cuda() else "cpu"

    @property
    def metrics(self) -> tuple[MetricRecord, ...]:
        return tuple(self._metrics.values())

    @property
    def windows(self) -> tuple[Window, ...]:
        return tuple(self._windows)

    @property
    def timed(self) -> tuple[tuple[str, Callable[[], object]], ...]:
        return tuple(self._timed)

    @property
    def used(self) -> dict[str, ParamValue]:
        return dict(self._used)

    @property
    def wall_per_cpu(self) -> float | None:
        """Wall time over this process's CPU time across the case's host-timed batches
        (_CpuCounted; model/state.py: WALL_PER_CPU); None where nothing was timed on the
        host or no CPU time was counted."""
        wall, cpu = self._cpu_timed[:2]
        return wall / cpu if wall > 0 and cpu > 0 else None

    @property
    def run_wait_share(self) -> float | None:
        """How much other work on the machine stretched the host-timed batches by holding
        the CPUs this process waited for (model/state.py: RUN_WAIT), the lesser of:

        - the threads' nanoseconds waiting for a CPU over the batches' wall time (over the
          threads' runnable time where several were runnable longer than that): one busy
          thread sharing its core waits about half the time; a case that mostly sleeps
          only its wake-ups' delays;
        - the share of the CPUs it may run on that it left unused (1 - CPU time / (wall
          time x CPUs allowed)): a bench that starts more threads than it has cores keeps
          them all busy and waits by itself, which is the code's doing, not contention.

        None where nothing was timed on the host, or a batch's threads could not be read
        (no schedstat)."""
        wall, cpu, ran, waited, unread = self._cpu_timed
        served = max(wall * 1e9, ran + waited)
        if unread or served <= 0 or wall <= 0:
            return None
        unused = max(0.0, 1.0 - cpu / (wall * len(placement.allowed())))
        return min(waited / served, unused)

    def pick(self, *, smoke: T, full: T) -> T:
        """The value for the current profile: `n = ctx.pick(smoke=64, full=8192)`."""
        return smoke if self.profile == "smoke" else full

    def note(self, **used: ParamValue) -> None:
        """Record what the case actually used, where its name says otherwise: a smoke
        case named `shape=12288x49152` that times 192x768 says `ctx.note(shape="192x768")`.
        Stored with each of the case's metrics as the property `used` (no schema change),
        and shown by `commitbench run` and `commitbench show`. Later notes add to earlier
        ones; values are scalars, like parameters."""
        for key, value in used.items():
            if not isinstance(value, str | int | float | bool | type(None)):
                raise ValueError(f"{self.case.label}: note {key}={value!r} is not a scalar")
            # Refused here, in the bench, as its metrics' properties would be later.
            checks.json_value(value, f"{self.case.label}: note {key}")
        self._used.update(used)

    def skip(self, reason: str) -> NoReturn:
        raise Skipped(reason)

    def _add(self, metric: MetricRecord) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"{self.case.label}: metric {metric.name!r} recorded twice")
        self._metrics[metric.name] = metric

    def _timer(self, timer: str) -> Timer:
        if timer == "cuda" or (timer == "auto" and cuda_initialized()):
            return CudaTimer()
        if timer in ("cpu", "auto"):
            return CpuTimer(self._clock)
        raise ValueError(f"timer {timer!r} is not auto, cpu or cuda")

    def time(
        self,
        name: str,
        fn: Callable[[], object],
        *,
        flops: float | None = None,
        bytes: float | None = None,
        dtype: object = None,
        warmup: int | None = None,
        repeat: int | None = None,
        budget_s: float | None = None,
        target_rel_ci: float | None = None,
        l2_flush: bool = False,
        timer: str = "auto",
    ) -> Timing:
        """Time `fn`; record `name` (seconds) and its TFLOP/s, % of peak and GB/s.

        `timer="auto"` uses CUDA events once this process has initialised CUDA, else
        perf_counter. `dtype` (e.g. "bf16" or torch.bfloat16) selects the dense peak for
        the percentage; without it, or on a device not in peaks.PEAKS, none is recorded.
        """
        base = self._policy
        if self._quick:
            warmup, repeat = 0, 1
        policy = TimingPolicy(
            warmup=base.warmup if warmup is None else warmup,
            warmup_s=0.0 if self._quick else base.warmup_s,
            repeat=base.repeat if repeat is None else repeat,
            min_repeat=base.min_repeat,
            max_repeat=base.max_repeat,
            budget_s=base.budget_s if budget_s is None else budget_s,
            target_rel_ci=base.target_rel_ci if target_rel_ci is None else target_rel_ci,
        )
        chosen = self._timer(timer)
        counted = _CpuCounted(chosen, self._cpu_timed) if chosen.name == CpuTimer.name else chosen
        start = self._wall()
        with profiling.nvtx_range(f"{self.case.label}/{name}"):
            timing = measure(fn, policy=policy, timer=counted, clock=self._clock, l2_flush=l2_flush)
        self._timed.append((name, fn))
        self._windows.append(Window(start, self._wall(), timing.calls))
        peak: float | None = None
        source: str | None = None
        if flops is not None and chosen.name == "cuda_event":
            peak, source = self._peak(dtype)
        self._add(
            MetricRecord.from_samples(
                name, timing.samples, unit="s", direction="lower", properties=timing.properties()
            )
        )
        for metric in _throughput(
            name, timing, flops=flops, bytes=bytes, peak_tflops=peak, peak_source=source
        ):
            self._add(metric)
        return timing

    def _peak(self, dtype: object) -> tuple[float | None, str | None]:
        import torch

        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        kind = peaks.normalize_dtype(dtype)
        peak = peaks.dense_peak_tflops(props.name, props.multi_processor_count, kind)
        return peak, f"{props.name} ({props.multi_processor_count} SMs) {kind}"

    def record(
        self,
        name: str,
        value: float | Sequence[float],
        unit: str,
        *,
        better: str = "lower",
        **properties: Any,
    ) -> None:
        """Record a measured value that `ctx.time` did not take (memory, accuracy, a
        count), or the raw samples of a measurement made elsewhere (in other processes)."""
        if better not in DIRECTIONS:
            raise ValueError(f"better={better!r} is not one of {DIRECTIONS}")
        samples = [float(v) for v in value] if isinstance(value, Sequence) else [float(value)]
        self._add(
            MetricRecord.from_samples(
                name, samples, unit=unit, direction=better, properties=properties
            )
        )
