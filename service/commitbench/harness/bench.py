"""The authoring API: `@bench`, parameter grids, requirements, profiles and `Context`.

```python
import commitbench as cb

@cb.bench(params={"n": [1024, 8192]}, requires=("cuda",))
def matmul(ctx: cb.Context, n: int) -> None:
    import torch
    n = ctx.pick(smoke=64, full=n)
    a = torch.randn(n, n, device=ctx.device, dtype=torch.bfloat16)
    ctx.time("matmul", lambda: a @ a, flops=2 * n**3, dtype="bf16")
```

A case is `module.function[k=v,...]` (records.CaseKey): the grid is the cartesian
product of `params` in the order written, and the label sorts the keys, so reordering a
dict does not rename a series. A bench runs in the profiles it lists (`smoke`: tiny
sizes on CPU in CI; `full`: real sizes on a GPU); `ctx.pick(smoke=..., full=...)`
chooses sizes, and `ctx.note(n=n)` records the ones actually used (a smoke case keeps its
full-size name). Requirements that the machine lacks mark the case `skipped` with the
reason. Nothing here imports torch until a bench asks for the device or a CUDA timer.
"""

from __future__ import annotations

import itertools
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar, overload

from commitbench.harness import peaks, profiling
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
BenchFn = Callable[..., object]
MARK = "__commitbench_bench__"

_MIN_RULE = re.compile(r"^(gpus|gpu_mem_gib)\s*>=\s*(\d+(?:\.\d+)?)$")


class Skipped(Exception):
    """Raised by `ctx.skip(reason)`; the case is recorded as `skipped` with the reason."""


def parse_requirement(text: str) -> tuple[str, float | None]:
    """'cuda' -> ('cuda', None); 'gpus>=2' -> ('gpus', 2.0); 'triton' -> ('triton', None)."""
    rule = _MIN_RULE.match(text.strip())
    if rule:
        return rule.group(1), float(rule.group(2))
    if not re.match(r"^[A-Za-z_][\w.]*$", text):
        raise ValueError(f"requirement {text!r}: use cuda, gpus>=N, gpu_mem_gib>=N or a module")
    return text, None


@dataclass(frozen=True)
class Bench:
    """A decorated bench function and everything needed to expand it into cases."""

    fn: BenchFn
    name: str
    params: tuple[tuple[str, tuple[ParamValue, ...]], ...] = ()
    requires: tuple[str, ...] = ()
    profiles: tuple[str, ...] = PROFILES
    policy: TimingPolicy = field(default_factory=TimingPolicy)

    def __post_init__(self) -> None:
        for p in self.profiles:
            if p not in PROFILES:
                raise ValueError(f"{self.name}: unknown profile {p!r}")
        for r in self.requires:
            parse_requirement(r)
        for key, values in self.params:
            if not values:
                raise ValueError(f"{self.name}: param {key} has no values")
        CaseKey.of(self.name)  # validates the name

    def grid(self) -> list[dict[str, ParamValue]]:
        """The parameter mappings of its cases, in the order written."""
        keys = [k for k, _ in self.params]
        grid = itertools.product(*(values for _, values in self.params))
        return [dict(zip(keys, combo, strict=True)) for combo in grid]

    def cases(self) -> tuple[CaseKey, ...]:
        return tuple(CaseKey.of(self.name, params) for params in self.grid())


@overload
def bench(fn: BenchFn, /) -> BenchFn: ...


@overload
def bench(
    *,
    params: Mapping[str, Iterable[ParamValue]] | None = None,
    requires: Sequence[str] = (),
    profiles: Sequence[str] = PROFILES,
    min_gpus: int | None = None,
    min_gpu_mem_gib: float | None = None,
    policy: TimingPolicy | None = None,
    name: str | None = None,
) -> Callable[[BenchFn], BenchFn]: ...


def bench(
    fn: BenchFn | None = None,
    /,
    *,
    params: Mapping[str, Iterable[ParamValue]] | None = None,
    requires: Sequence[str] = (),
    profiles: Sequence[str] = PROFILES,
    min_gpus: int | None = None,
    min_gpu_mem_gib: float | None = None,
    policy: TimingPolicy | None = None,
    name: str | None = None,
) -> BenchFn | Callable[[BenchFn], BenchFn]:
    """Mark a function `f(ctx, **params)` as a bench; it stays callable as written."""
    if isinstance(requires, str):
        requires = (requires,)
    rules = list(requires)
    if min_gpus is not None:
        rules.append(f"gpus>={min_gpus}")
    if min_gpu_mem_gib is not None:
        rules.append(f"gpu_mem_gib>={min_gpu_mem_gib}")

    def mark(f: BenchFn) -> BenchFn:
        if name is None and "<locals>" in f.__qualname__:
            raise ValueError(f"{f.__qualname__}: define benches at module level, or pass name=")
        spec = Bench(
            fn=f,
            name=name or f"{f.__module__}.{f.__qualname__}",
            params=tuple((k, tuple(v)) for k, v in (params or {}).items()),
            requires=tuple(rules),
            profiles=tuple(profiles),
            policy=policy or TimingPolicy(),
        )
        setattr(f, MARK, spec)
        return f

    return mark(fn) if fn is not None else mark


def benches_of(module: object) -> tuple[Bench, ...]:
    """The benches defined in a module (not ones it imported), in definition order."""
    found = []
    mod_name = getattr(module, "__name__", None)
    for value in vars(module).values():
        spec = getattr(value, MARK, None)
        if isinstance(spec, Bench) and getattr(value, "__module__", None) == mod_name:
            found.append(spec)
    return tuple(found)


class Probe:
    """What the machine offers, asked lazily (torch is imported only for GPU questions)."""

    def __init__(self, device: str = "auto") -> None:
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device {device!r} is not auto, cpu or cuda")
        self._device = device
        self._cuda: bool | None = None

    def cuda(self) -> bool:
        if self._cuda is None:
            if self._device == "cpu":
                self._cuda = False
            else:
                try:
                    import torch
                except ImportError:
                    self._cuda = False
                else:
                    self._cuda = bool(torch.cuda.is_available())
        return self._cuda

    def gpu_count(self) -> int:
        if not self.cuda():
            return 0
        import torch

        return int(torch.cuda.device_count())

    def gpu_mem_gib(self) -> float:
        if not self.cuda():
            return 0.0
        import torch

        return float(torch.cuda.get_device_properties(0).total_memory) / 2**30

    def has_module(self, name: str) -> bool:
        import importlib.util

        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    def missing(self, requires: Sequence[str]) -> str | None:
        """The first unmet requirement as a sentence, or None when all are met."""
        for text in requires:
            what, minimum = parse_requirement(text)
            if what == "cuda" and not self.cuda():
                return "requires CUDA, which is not available"
            if what == "gpus" and minimum is not None and self.gpu_count() < minimum:
                return f"requires {minimum:g} GPUs, found {self.gpu_count()}"
            if what == "gpu_mem_gib" and minimum is not None and self.gpu_mem_gib() < minimum:
                return f"requires {minimum:g} GiB of GPU memory, found {self.gpu_mem_gib():.1f}"
            if what not in ("cuda", "gpus", "gpu_mem_gib") and not self.has_module(what):
                return f"requires {what}, which is not installed"
        return None


# Set when the worker's calibration (harness/calibration.py), not bench code, initialised
# CUDA in this process.
_calibration_cuda = False


def mark_calibration_cuda() -> None:
    """The calibration initialised CUDA: cuda_initialized() counts it only once bench
    code has allocated GPU memory."""
    global _calibration_cuda
    _calibration_cuda = True


def cuda_initialized() -> bool:
    """True when this process's bench code has used CUDA (without importing torch
    otherwise). Where only the calibration initialised CUDA, the bench has used it once
    it allocated GPU memory (the peak since the case began; the calibration's tensor is
    freed), so a CPU-only case keeps its perf_counter timer and no peak_cuda_mem."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return False
    if not _calibration_cuda:
        return True
    return bool(torch.cuda.memory_allocated() > 0 or torch.cuda.max_memory_allocated() > 0)


class _CpuCounted:
    """A host timer that also adds up wall and CPU time (`time.process_time`, the whole
    process's: work on other threads reads more CPU than wall) around each batch it
    times, into `spent` [wall, CPU]: their ratio is state.wall_per_cpu (model/state.py),
    above 1.1 a sign that the process waited for a core."""

    def __init__(self, timer: Timer, spent: list[float]) -> None:
        self.name = timer.name
        self.flushes_l2 = timer.flushes_l2
        self._timer = timer
        self._spent = spent

    def sync(self) -> None:
        self._timer.sync()

    def time(self, fn: Callable[[], object], n: int, *, l2_flush: bool) -> list[float]:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        samples = self._timer.time(fn, n, l2_flush=l2_flush)
        self._spent[0] += time.perf_counter() - wall0
        self._spent[1] += time.process_time() - cpu0
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
        self._cpu_timed = [0.0, 0.0]  # wall, CPU seconds of perf_counter-timed batches
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
        wall, cpu = self._cpu_timed
        return wall / cpu if wall > 0 and cpu > 0 else None

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
