"""Energy from NVML's total-energy counter (issue 13, item 8): exact arithmetic on
scripted counters (the fake NVML of tests/test_sampler.py; no GPU here)."""

from __future__ import annotations

from commitbench.model.cases import CaseKey
from commitbench.model.records import ResultRecord, Window
from commitbench.runner.launcher import CaseRun
from commitbench.runner.sampling.energy import MIN_COUNTER_WINDOW_S, summarize
from commitbench.runner.sampling.readings import GpuReading, Reading, Tick
from commitbench.runner.sampling.sampler import DeviceSampler, NvmlBackend
from tests.test_sampler import Clock, FakeNvml


def _ticks(times: list[float], counters: list[list[float | None]]) -> list[Tick]:
    """Ticks at `times`; counters[i] are GPU i's counter readings in mJ (None: unread),
    each GPU drawing a steady 100 W by its power reading."""
    return [
        Tick(
            t,
            "m.f",
            Reading(
                tuple(
                    GpuReading(gpu, power_w=100.0, energy_mj=counters[gpu][i])
                    for gpu in range(len(counters))
                )
            ),
        )
        for i, t in enumerate(times)
    ]


def test_energy_is_the_counters_difference_and_per_iteration_its_windows() -> None:
    # GPU 0: 0 -> 500 J over 4 s; GPU 1: 1000 -> 1100 J. Power says 100 W each (800 J),
    # the counter is what counts.
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    ticks = _ticks(
        times,
        [
            [0.0, 100e3, 300e3, 400e3, 500e3],
            [1000e3, 1025e3, 1050e3, 1075e3, 1100e3],
        ],
    )
    # Windows [0.5, 1.5] and [2.0, 3.5]: GPU 0 from 50 to 200 J and 300 to 450 J (300 J),
    # GPU 1 from 1012.5 to 1037.5 and 1050 to 1087.5 J (62.5 J): 362.5 J over 50 calls.
    windows = [Window(0.5, 1.5, 20), Window(2.0, 3.5, 30)]
    metrics = {m.name: m for m in summarize(ticks, windows)}
    assert metrics["energy"].median == 600.0
    assert metrics["energy"].properties == {
        "gpus": 2,
        "source": "nvml_total_energy",
        "gates": False,  # set-up included: never a comparison of the code
    }
    per_iter = metrics["energy_per_iter"]
    assert per_iter.median == 362.5 / 50
    assert per_iter.properties == {
        "calls": 50,
        "ticks_in_windows": 3,
        "window_s": 2.5,
        "source": "nvml_total_energy",
    }  # long enough for the counter: no "gates": false, the gate's interval rule decides


def test_a_window_too_short_for_the_counter_does_not_gate() -> None:
    ticks = _ticks([0.0, 0.25, 0.5], [[0.0, 10e3, 20e3]])
    short = Window(0.125, 0.375, 10)
    assert short.end - short.start < MIN_COUNTER_WINDOW_S
    (per_iter,) = [m for m in summarize(ticks, [short]) if m.name == "energy_per_iter"]
    assert per_iter.median == 10.0 / 10
    assert per_iter.properties["gates"] is False
    assert per_iter.properties["source"] == "nvml_total_energy"


def test_power_is_the_fallback_where_a_gpu_has_no_counter() -> None:
    ticks = _ticks([0.0, 1.0, 2.0], [[0.0, 100e3, 200e3], [None, None, None]])
    (energy,) = [m for m in summarize(ticks) if m.name == "energy"]
    assert energy.median == 400.0  # 100 W x 2 s x 2 GPUs, integrated
    assert energy.properties["source"] == "power_integral"


class CountingNvml(FakeNvml):
    """A GPU whose counter advances 250 J per read (a tick)."""

    def __init__(self) -> None:
        super().__init__(gpus=1)
        self.reads = 0

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        self.reads += 1
        return 5_000_000 + 250_000 * self.reads


def test_the_sampler_reads_the_counter_through_nvml() -> None:
    clock, nvml = Clock(), CountingNvml()
    sampler = DeviceSampler([NvmlBackend(nvml)], clock=clock)
    case = CaseKey.of("m.f")
    sampler.case_started(case)
    for _ in range(4):
        sampler.sample_once()
        clock.now += 1.0
    sampler.case_finished(case)
    start = 1_700_000_000.0
    run = CaseRun(ResultRecord(case, "ok"), (Window(start, start + 3.0, 6),))
    metrics = {m.name: m for m in sampler.annotate(run).metrics}
    assert metrics["energy"].median == 750.0  # 4 reads: 3 steps of 250 J
    assert metrics["energy_per_iter"].median == 750.0 / 6
    assert "gates" not in metrics["energy_per_iter"].properties  # 3 s of windows
