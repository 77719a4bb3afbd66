"""DeviceSampler: samples every GPU and the worker's process tree from the orchestrator.

It runs in the orchestrating process, not in the worker: NVML polled every 10 ms from a
thread inside a bench process slowed a matmul loop by about 7% on an H100 (3.7% at
100 ms), while a sampler in another process costs the bench nothing it can measure
(perf/harness_gpu.py checks <= 0.5% at 100 ms).

One class, pluggable backends: `NvmlBackend` (utilization, memory used, power, SM clock,
temperature, throttle reasons and the total-energy counter of each GPU) and
`PsutilBackend` (CPU % and RSS of the worker's process tree, CPU % of the host). Each
tick is tagged with the case that was running (the launcher reports starts and ends
through the WorkerObserver methods), and `annotate` turns a case's ticks into
DeviceSample rows and summary metrics, with the machine's state over the case (state.py:
load, steal, SM clock, throttling, other GPU processes; the host and the GPUs' processes
are read at each case's start and end).

The clock is wall time in epoch seconds (`time.time` by default, injectable), because the
worker reports its timed windows in the same clock and energy per iteration integrates
power over exactly those windows.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, Protocol

import psutil

from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import DeviceSample, ResultRecord
from commitbench.runner.launcher import CaseRun
from commitbench.runner.sampling import host
from commitbench.runner.sampling.energy import summarize
from commitbench.runner.sampling.readings import (
    GpuReading,
    ProcessReading,
    Reading,
    Tick,
    merge,
    to_device_samples,
)
from commitbench.runner.sampling.state import gpu_metrics, host_metrics, other_processes_metric

log = logging.getLogger(__name__)
Clock = Callable[[], float]
DEFAULT_INTERVAL_S = 0.1


class Backend(Protocol):
    def read(self) -> Reading: ...

    def watch(self, pid: int | None) -> None: ...

    def close(self) -> None: ...


class NvmlBackend:
    """Every GPU (or `indices`) through NVML; a field NVML does not support reads None."""

    def __init__(self, nvml: Any = None, indices: Sequence[int] | None = None) -> None:
        nvml = nvml if nvml is not None else importlib.import_module("pynvml")
        self._nvml = nvml
        nvml.nvmlInit()
        count = nvml.nvmlDeviceGetCount()
        self.indices = tuple(range(count) if indices is None else indices)
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in self.indices]

    @classmethod
    def available(cls) -> NvmlBackend | None:
        """The backend, or None where there is no NVIDIA driver or no GPU."""
        try:
            backend = cls()
        except Exception as err:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError
            log.debug("NVML not available: %s", err)
            return None
        if not backend.indices:
            backend.close()
            return None
        return backend

    def _get(self, fn: Callable[..., Any] | None, *args: Any) -> Any:
        if fn is None:
            return None
        try:
            return fn(*args)
        except self._nvml.NVMLError:
            return None

    def read(self) -> Reading:
        nv = self._nvml
        # Renamed "event reasons" in newer NVML; the old name is kept as an alias there.
        reasons = getattr(
            nv,
            "nvmlDeviceGetCurrentClocksEventReasons",
            getattr(nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None),
        )
        out = []
        for index, h in zip(self.indices, self._handles, strict=True):
            rates = self._get(nv.nvmlDeviceGetUtilizationRates, h)
            memory = self._get(nv.nvmlDeviceGetMemoryInfo, h)
            util = None if rates is None else rates.gpu
            mem = None if memory is None else memory.used
            power = self._get(nv.nvmlDeviceGetPowerUsage, h)  # milliwatts
            clock = self._get(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM)
            temp = self._get(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU)
            throttle = self._get(reasons, h)
            energy = self._get(getattr(nv, "nvmlDeviceGetTotalEnergyConsumption", None), h)
            out.append(
                GpuReading(
                    gpu=index,
                    util_pct=None if util is None else float(util),
                    mem_mib=None if mem is None else mem / 2**20,
                    power_w=None if power is None else power / 1000.0,
                    sm_clock_mhz=None if clock is None else float(clock),
                    temperature_c=None if temp is None else float(temp),
                    throttle_reasons=None if throttle is None else int(throttle),
                    energy_mj=None if energy is None else float(energy),
                )
            )
        return Reading(gpus=tuple(out))

    def watch(self, pid: int | None) -> None:
        return None

    def other_processes(self, ours: set[int]) -> int | None:
        """Processes with a compute context on these GPUs that are not in `ours`; None
        where NVML cannot list them, or lists only pids this PID namespace does not have
        (a container: NVML gives the host's pids, and ours cannot be told from others)."""
        listing = getattr(self._nvml, "nvmlDeviceGetComputeRunningProcesses", None)
        pids: set[int] = set()
        for h in self._handles:
            procs = self._get(listing, h)
            if procs is None:
                return None
            pids.update(int(p.pid) for p in procs)
        foreign = pids - ours
        if foreign and not any(psutil.pid_exists(p) for p in pids):
            return None
        return len(foreign)

    def persistence_mode(self) -> list[bool | None]:
        """Each GPU's persistence mode (None where NVML does not say)."""
        get = getattr(self._nvml, "nvmlDeviceGetPersistenceMode", None)
        modes = [self._get(get, h) for h in self._handles]
        return [None if m is None else bool(m) for m in modes]

    def close(self) -> None:
        self._get(self._nvml.nvmlShutdown)


class PsutilBackend:
    """CPU % and RSS of a process and its descendants, and the host's CPU %."""

    def __init__(self, pid: int | None = None) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._root: psutil.Process | None = None
        psutil.cpu_percent(interval=None)  # the first call only sets the baseline
        self.watch(pid)

    def watch(self, pid: int | None) -> None:
        self._procs = {}
        self._root = None
        if pid is not None:
            try:
                self._root = psutil.Process(pid)
            except psutil.NoSuchProcess:
                return
            self._root.cpu_percent(interval=None)

    def _tree(self) -> list[psutil.Process]:
        root = self._root
        if root is None:
            return []
        try:
            found = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        # Keep the same Process objects between ticks: cpu_percent measures since the last call.
        procs = {p.pid: self._procs.get(p.pid, p) for p in found}
        self._procs = procs
        return list(procs.values())

    def read(self) -> Reading:
        cpu = rss = 0.0
        alive = 0
        for p in self._tree():
            try:
                with p.oneshot():
                    cpu += p.cpu_percent(interval=None)
                    rss += p.memory_info().rss / 2**20
                alive += 1
            except psutil.Error:
                continue
        host = psutil.cpu_percent(interval=None)
        return Reading(
            process=ProcessReading(
                cpu_util_pct=cpu if alive else None,
                rss_mib=rss if alive else None,
                host_cpu_util_pct=host,
            )
        )

    def close(self) -> None:
        self._procs = {}
        self._root = None


class DeviceSampler:
    """Samples `backends` every `interval` seconds on a thread until stopped."""

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        interval: float = DEFAULT_INTERVAL_S,
        clock: Clock = time.time,
        event: threading.Event | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self.backends = tuple(backends)
        self.interval = interval
        self._clock = clock
        self._stop = event or threading.Event()
        self._lock = threading.Lock()
        self._case: str | None = None
        self._ticks: list[Tick] = []
        self._thread: threading.Thread | None = None
        self._worker: int | None = None
        # Per running case: the host at its start, then at its end (host.py), and the
        # most processes of other programs seen on the GPUs.
        self._host: dict[str, list[tuple[float | None, host.CpuTimes | None]]] = {}
        self._others: dict[str, int | None] = {}

    @property
    def nvml(self) -> NvmlBackend | None:
        return next((b for b in self.backends if isinstance(b, NvmlBackend)), None)

    def _ours(self) -> set[int]:
        """The worker's process tree."""
        if self._worker is None:
            return set()
        try:
            root = psutil.Process(self._worker)
            return {root.pid, *(p.pid for p in root.children(recursive=True))}
        except psutil.Error:
            return {self._worker}

    def _note_state(self, label: str) -> None:
        snap = (host.load_average(), host.cpu_times())
        nvml = self.nvml
        others = nvml.other_processes(self._ours()) if nvml is not None else None
        with self._lock:
            self._host.setdefault(label, []).append(snap)
            if label not in self._others or others is None:
                self._others[label] = others
            else:
                seen = self._others[label]
                self._others[label] = None if seen is None else max(seen, others)

    def run_state(self) -> dict[str, Any]:
        """Run-level state for the run's environment: each GPU's persistence mode."""
        nvml = self.nvml
        return {} if nvml is None else {"gpu_persistence_mode": nvml.persistence_mode()}

    @classmethod
    def default(cls, *, interval: float = DEFAULT_INTERVAL_S) -> DeviceSampler:
        """NVML when there is a GPU, plus psutil."""
        nvml = NvmlBackend.available()
        backends: list[Backend] = [nvml] if nvml is not None else []
        backends.append(PsutilBackend())
        return cls(backends, interval=interval)

    # -- the WorkerObserver protocol (launcher.py) -------------------------------------

    def worker_started(self, pid: int) -> None:
        self._worker = pid
        for b in self.backends:
            b.watch(pid)

    def case_started(self, case: CaseKey) -> None:
        with self._lock:
            self._case = case.label
            self._host.pop(case.label, None)
            self._others.pop(case.label, None)
        self._note_state(case.label)

    def case_finished(self, case: CaseKey) -> None:
        with self._lock:
            if self._case == case.label:
                self._case = None
        self._note_state(case.label)

    # -- sampling -----------------------------------------------------------------------

    def sample_once(self) -> Tick:
        """Take one tick now (the thread calls this; tests call it directly)."""
        reading = merge([b.read() for b in self.backends])
        with self._lock:
            tick = Tick(self._clock(), self._case, reading)
            self._ticks.append(tick)
        return tick

    def _loop(self) -> None:
        due = self._clock()
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception:  # a sampler must never take the run down
                log.exception("device sampling failed; stopping the sampler")
                return
            due += self.interval
            now = self._clock()
            if due < now:  # fell behind (a slow NVML call): skip the missed ticks
                due = now
            if self._stop.wait(due - now):
                return

    def start(self) -> DeviceSampler:
        if self._thread is not None:
            raise RuntimeError("sampler already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="commitbench-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self.stop()
        for b in self.backends:
            b.close()

    def __enter__(self) -> DeviceSampler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- results ------------------------------------------------------------------------

    def take(self, label: str | None) -> list[Tick]:
        """Remove and return the ticks tagged `label` (None: taken while no case ran)."""
        with self._lock:
            mine = [t for t in self._ticks if t.case == label]
            self._ticks = [t for t in self._ticks if t.case != label]
        return mine

    def take_untagged(self) -> tuple[DeviceSample, ...]:
        """Rows for MetricsRecorder.add_run_samples: ticks taken between cases."""
        return to_device_samples(self.take(None))

    def annotate(self, run: CaseRun) -> ResultRecord:
        """The case's result with its device samples attached and, when it is ok, the
        summary metrics of its ticks (energy.summarize says which ticks each uses). A
        skipped or failed case keeps its samples but gets no metrics: a 4 ms skip that a
        tick lands on would otherwise report the CPU use of the case before it."""
        label = run.result.case.label
        ticks = self.take(label)
        with self._lock:
            snaps = self._host.pop(label, [])
            others = self._others.pop(label, None)
        taken = {m.name for m in run.result.metrics}
        summaries: list[MetricRecord] = []
        if run.result.status == "ok":
            summaries.extend(summarize(ticks, run.windows))
            (load0, cpu0), (load1, cpu1) = (snaps + [(None, None)] * 2)[:2]
            summaries.extend(host_metrics(load0, load1, cpu0, cpu1))
            summaries.extend(gpu_metrics(ticks, run.windows))
            summaries.extend(other_processes_metric(others))
        extra = tuple(m for m in summaries if m.name not in taken)
        return replace(
            run.result,
            metrics=(*run.result.metrics, *extra),
            device_samples=(*run.result.device_samples, *to_device_samples(ticks)),
        )
