"""DeviceSampler: a fake NVML (no GPU here; perf/harness_gpu.py checks the real one on a
GPU), the real psutil backend on real processes, and exact energy arithmetic."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from commitbench.model.cases import CaseKey
from commitbench.model.records import ResultRecord, Window
from commitbench.model.state import is_state
from commitbench.runner.launcher import CaseRun, WorkerOptions, run_module
from commitbench.runner.machine import fingerprint, gpu_facts
from commitbench.runner.sampling.energy import integrate, summarize
from commitbench.runner.sampling.sampler import (
    DeviceSampler,
    GpuReading,
    NvmlBackend,
    ProcessReading,
    PsutilBackend,
    Reading,
    Tick,
    to_device_samples,
)


class NVMLError(Exception):
    pass


class FakeNvml:
    """The slice of pynvml the backend and machine.py call, with scripted GPUs."""

    NVMLError = NVMLError
    NVML_CLOCK_SM = 1
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, gpus: int = 2, power_mw: int = 100_000, fail_init: bool = False) -> None:
        self.gpus = gpus
        self.power_mw = power_mw
        self.fail_init = fail_init
        self.util = 0
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise NVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=self.util + h, memory=0)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(used=(1 + h) * 2**30, total=80 * 2**30)

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return self.power_mw

    def nvmlDeviceGetClockInfo(self, h: int, kind: int) -> int:
        assert kind == self.NVML_CLOCK_SM
        return 1980

    def nvmlDeviceGetTemperature(self, h: int, kind: int) -> int:
        raise NVMLError("Not Supported")

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: int) -> int:
        return 4

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return 12040


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_nvml_backend_converts_units_and_tolerates_unsupported_fields() -> None:
    nvml = FakeNvml(gpus=2)
    nvml.util = 90
    reading = NvmlBackend(nvml).read()
    assert reading.gpus == (
        GpuReading(0, 90.0, 1024.0, 100.0, 1980.0, None, 4),
        GpuReading(1, 91.0, 2048.0, 100.0, 1980.0, None, 4),
    )
    assert NvmlBackend(nvml, indices=[1]).read().gpus[0].gpu == 1


def test_nvml_is_absent_without_a_driver_or_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NvmlBackend, "__init__", _raising_init)
    assert NvmlBackend.available() is None
    assert gpu_facts(FakeNvml(fail_init=True)) == {}
    assert gpu_facts(FakeNvml(gpus=0)) == {}


def _raising_init(self: NvmlBackend, *args: object) -> None:
    raise NVMLError("NVML Shared Library Not Found")


def test_fingerprint_covers_every_gpu_and_not_the_host_name() -> None:
    two, one = fingerprint(FakeNvml(gpus=2)), fingerprint(FakeNvml(gpus=1))
    assert two.gpu_count == 2 and two.gpu_name == "NVIDIA H100 80GB HBM3"
    assert two.gpu_memory_mib == 80 * 1024
    assert (two.driver_version, two.cuda_version) == ("550.54.15", "12.4")
    assert two.info["gpu_names"] == ["NVIDIA H100 80GB HBM3"] * 2
    assert two.fingerprint != one.fingerprint
    assert two.fingerprint == fingerprint(FakeNvml(gpus=2)).fingerprint
    assert socket.gethostname() not in json.dumps(two.info)
    assert fingerprint(FakeNvml(fail_init=True)).gpu_count == 0


def test_ticks_are_tagged_with_the_running_case() -> None:
    clock, nvml = Clock(), FakeNvml(gpus=1)
    sampler = DeviceSampler([NvmlBackend(nvml)], clock=clock)
    case = CaseKey.of("m.f", {"n": 1})
    sampler.sample_once()
    sampler.case_started(case)
    for util in (50, 100):
        clock.now += 0.1
        nvml.util = util
        sampler.sample_once()
    sampler.case_finished(case)
    clock.now += 0.1
    sampler.sample_once()
    mine = sampler.take(case.label)
    assert [(t.time - 1_700_000_000.0, t.reading.gpus[0].util_pct) for t in mine] == [
        pytest.approx((0.1, 50.0)),
        pytest.approx((0.2, 100.0)),
    ]
    assert sampler.take(case.label) == []
    between = sampler.take_untagged()
    assert len(between) == 2 and all(s.gpu_index == 0 for s in between)


def _ticks(times: list[float], watts: list[float], gpus: int = 2) -> list[Tick]:
    return [
        Tick(
            t,
            "m.f",
            Reading(
                gpus=tuple(GpuReading(g, 50.0 * g, 1000.0 + g, w) for g in range(gpus)),
                process=ProcessReading(cpu_util_pct=100.0, rss_mib=500.0, host_cpu_util_pct=50.0),
            ),
        )
        for t, w in zip(times, watts, strict=True)
    ]


def test_integration_is_the_trapezoidal_rule() -> None:
    times, ramp = [0.0, 10.0], [0.0, 10.0]
    assert integrate(times, ramp, 0.0, 10.0) == 50.0
    assert integrate(times, ramp, 2.5, 7.5) == 25.0
    assert integrate(times, ramp, 10.0, 12.0) == 20.0  # constant beyond the last tick
    assert integrate([0.0, 1.0, 2.0], [0.0, 10.0, 0.0], 0.0, 2.0) == 10.0
    assert integrate(times, ramp, 5.0, 5.0) == 0.0


def test_summary_metrics_and_energy_per_iteration() -> None:
    ticks = _ticks([0.0, 1.0, 2.0], [100.0, 300.0, 100.0])
    metrics = {m.name: m for m in summarize(ticks, [Window(0.5, 1.5, 10)])}
    assert metrics["gpu_util"].mean == 25.0 and metrics["gpu_util"].max == 50.0
    assert metrics["gpu_util"].samples is None  # device_samples hold the raw values
    assert metrics["gpu_mem"].max == 1001.0
    assert metrics["cpu_util"].mean == 100.0
    assert metrics["rss"].max == 500.0
    assert metrics["host_cpu_util"].mean == 50.0
    # Each GPU: a triangle 100 -> 300 -> 100 W over 2 s = 400 J; two GPUs = 800 J.
    assert metrics["energy"].median == 800.0
    # In [0.5, 1.5] each GPU draws 200 -> 300 -> 200 W: 250 J, two GPUs 500 J, 10 calls.
    assert metrics["energy_per_iter"].median == 50.0
    assert metrics["energy_per_iter"].properties == {
        "calls": 10,
        "ticks_in_windows": 1,
        "window_s": 1.0,
        "source": "power_integral",
        "gates": False,  # power ticks never decide a verdict
    }


def test_no_energy_from_fewer_than_two_power_readings() -> None:
    names = {m.name for m in summarize(_ticks([0.0], [100.0]), [Window(0.0, 1.0, 3)])}
    assert "energy" not in names and "energy_per_iter" not in names
    assert summarize([]) == ()


def test_device_sample_rows() -> None:
    rows = to_device_samples(_ticks([0.0], [120.0]))
    assert [r.gpu_index for r in rows] == [0, 1]
    assert rows[1].power_w == 120.0 and rows[1].cpu_util_pct == 100.0
    assert rows[0].time == datetime(1970, 1, 1, tzinfo=timezone.utc)
    cpu_only = Tick(5.0, None, Reading(process=ProcessReading(10.0, 20.0, 30.0)))
    (row,) = to_device_samples([cpu_only])
    assert (row.gpu_index, row.cpu_util_pct, row.rss_mib) == (None, 10.0, 20.0)
    assert to_device_samples([Tick(5.0, None, Reading())]) == ()


def test_a_reading_that_is_not_a_measurement_is_left_out_not_fatal() -> None:
    """A driver's glitch (NaN power, infinite utilization, negative CPU %) costs that
    figure of that tick; the records would refuse it, and the case with it."""
    nan, inf = float("nan"), float("inf")
    good = _ticks([0.0, 1.0, 2.0], [100.0, 300.0, 100.0], gpus=1)
    glitch = Tick(
        1.5,
        "m.f",
        Reading(
            gpus=(GpuReading(0, inf, 1000.0, nan, -5.0, nan),),
            process=ProcessReading(cpu_util_pct=-3.0, rss_mib=nan, host_cpu_util_pct=inf),
        ),
    )
    ticks = [*good[:2], glitch, good[2]]
    rows = to_device_samples(ticks)
    assert rows[2][1:] == (0, None, 1000.0, None, None, None, None, None, None)
    ResultRecord(CaseKey.of("m.f"), "ok", device_samples=rows)  # the records accept them
    metrics = {m.name: m for m in summarize(ticks)}
    assert metrics["energy"].median == 400.0  # from the three real power readings
    assert (metrics["gpu_util"].n, metrics["cpu_util"].n, metrics["rss"].n) == (2, 2, 3)


def test_annotate_attaches_samples_and_keeps_the_workers_metrics() -> None:
    clock, nvml = Clock(), FakeNvml(gpus=1, power_mw=200_000)
    sampler = DeviceSampler([NvmlBackend(nvml)], clock=clock)
    case = CaseKey.of("m.f")
    sampler.case_started(case)
    for _ in range(3):
        sampler.sample_once()
        clock.now += 0.5
    sampler.case_finished(case)
    start = 1_700_000_000.0
    run = CaseRun(ResultRecord(case, "ok"), (Window(start, start + 1.0, 4),))
    result = sampler.annotate(run)
    assert len(result.device_samples) == 3
    metrics = {m.name: m for m in result.metrics}
    assert metrics["energy"].median == 200.0  # 200 W for 1 s
    assert metrics["energy_per_iter"].median == 50.0
    assert "cpu_util" not in metrics  # no process backend


@pytest.fixture
def busy_tree() -> Iterator[subprocess.Popen[bytes]]:
    """An idle parent whose child spins: only a tree-wide reading sees the CPU use."""
    code = textwrap.dedent(
        """
        import subprocess, sys
        subprocess.run([sys.executable, "-c", "while True: pass"])
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    yield proc
    for child in psutil.Process(proc.pid).children(recursive=True):
        child.kill()
    proc.kill()
    proc.wait()


def test_psutil_backend_reads_the_whole_process_tree(busy_tree: subprocess.Popen[bytes]) -> None:
    backend = PsutilBackend(busy_tree.pid)
    deadline = time.monotonic() + 10
    while not psutil.Process(busy_tree.pid).children() and time.monotonic() < deadline:
        time.sleep(0.05)  # let the child start and spin
    backend.read()  # baseline for every process of the tree
    time.sleep(1.0)
    proc = backend.read().process
    assert proc is not None
    # The parent idles: any real share of a core can only be the child's. On a loaded
    # machine the spinner gets less than a full core, so the bar is well below 100%.
    assert proc.cpu_util_pct is not None and proc.cpu_util_pct > 15.0
    assert proc.rss_mib is not None and proc.rss_mib > 5.0
    assert proc.host_cpu_util_pct is not None and proc.host_cpu_util_pct > 0.0
    backend.watch(None)
    after = backend.read().process
    assert after is not None and (after.cpu_util_pct, after.rss_mib) == (None, None)


def test_the_thread_stops_promptly_through_its_event() -> None:
    event = threading.Event()
    sampler = DeviceSampler([NvmlBackend(FakeNvml(gpus=1))], interval=60.0, event=event)
    sampler.start()
    t0 = time.monotonic()
    deadline = t0 + 5
    while not sampler.take(None) and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.close()
    assert time.monotonic() - t0 < 5.0  # not the 60 s interval
    assert event.is_set()


@pytest.mark.slow
def test_sampling_a_real_worker(tmp_path: Path) -> None:
    (tmp_path / "spin.py").write_text(
        textwrap.dedent(
            """
            import time
            import commitbench as cb

            @cb.bench
            def spin(ctx):
                end = time.perf_counter() + 1.0
                ctx.time("loop", lambda: sum(range(10_000)), repeat=50)
                while time.perf_counter() < end:
                    pass
            """
        )
    )
    options = WorkerOptions(timeout_s=30, pythonpath=(tmp_path,), device="cpu")
    with DeviceSampler([PsutilBackend()], interval=0.05) as sampler:
        runs = list(run_module("spin", options, observer=sampler))
        (result,) = [sampler.annotate(r) for r in runs]
    assert result.status == "ok"
    assert len(result.device_samples) >= 10
    metrics = {m.name: m for m in result.metrics}
    assert metrics["cpu_util"].max is not None and metrics["cpu_util"].max > 50.0
    assert metrics["rss"].max is not None and metrics["rss"].max > 5.0
    assert "energy" not in metrics  # no GPU, no power


def _process_ticks(cpu: list[float], rss: list[float]) -> list[Tick]:
    return [
        Tick(float(i), "m.f", Reading(process=ProcessReading(c, r, 2 * c)))
        for i, (c, r) in enumerate(zip(cpu, rss, strict=True))
    ]


def test_rates_skip_the_first_tick_of_a_case() -> None:
    # The first tick's CPU % covers the time since the tick before the case: the case
    # before it ran then (170.6%). Levels (RSS) are read at the tick's instant.
    metrics = {m.name: m for m in summarize(_process_ticks([170.6, 10.0, 20.0], [1.0, 2.0, 3.0]))}
    assert (metrics["cpu_util"].n, metrics["cpu_util"].mean, metrics["cpu_util"].max) == (
        2,
        15.0,
        20.0,
    )
    assert (metrics["host_cpu_util"].n, metrics["host_cpu_util"].max) == (2, 40.0)
    assert (metrics["rss"].n, metrics["rss"].max) == (3, 3.0)


def test_gpu_power_is_a_rate_and_memory_a_level() -> None:
    # NVML's power on Ampere and newer is the mean of the last second: a rate.
    metrics = {m.name: m for m in summarize(_ticks([0.0, 1.0, 2.0], [500.0, 100.0, 300.0]))}
    assert (metrics["gpu_power"].n, metrics["gpu_power"].mean) == (4, 200.0)
    assert (metrics["gpu_util"].n, metrics["gpu_mem"].n) == (4, 6)


def test_a_sub_tick_case_gets_levels_and_no_rates() -> None:
    names = [m.name for m in summarize(_process_ticks([170.6], [900.0]))]
    assert names == ["rss"]


def test_a_skipped_case_keeps_its_samples_but_gets_no_metrics() -> None:
    clock, nvml = Clock(), FakeNvml(gpus=1)
    sampler = DeviceSampler([NvmlBackend(nvml)], clock=clock)
    for status in ("skipped", "ok"):
        case = CaseKey.of("m.f", {"status": status})
        sampler.case_started(case)
        for _ in range(2):
            sampler.sample_once()
            clock.now += 0.1
        sampler.case_finished(case)
        result = sampler.annotate(CaseRun(ResultRecord(case, status), ()))
        assert len(result.device_samples) == 2
        names = [m.name for m in result.metrics if not is_state(m.name)]
        assert names == (
            [] if status == "skipped" else ["gpu_util", "gpu_mem", "gpu_power", "energy"]
        )
        got = {m.name: m for m in result.metrics if is_state(m.name)}
        if status == "ok":  # the fake GPU: 1980 MHz under its SW power cap
            assert got["state.sm_clock_mhz"].samples == (1980.0,)
            assert got["state.throttled_fraction"].samples == (1.0,)
            assert got["state.throttled_fraction"].properties["reasons"] == ["sw_power_cap"]
            assert "state.other_gpu_processes" not in got  # the fake cannot list them
        else:
            assert got == {}
