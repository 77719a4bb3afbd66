"""`commitbench doctor` for real on this CPU-only machine (real worker processes, real
/proc); the GPU checks with tests/test_sampler.py's fake NVML, the hardware missing."""

from __future__ import annotations

import itertools
import json
import os
from types import SimpleNamespace

from commitbench.model import state
from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import ResultRecord
from commitbench.runner.diagnosis import (
    Diagnosis,
    Finding,
    Loop,
    gpu_findings,
    noise_findings,
)
from commitbench.runner.doctor import diagnose
from commitbench.runner.sampling.sampler import DeviceSampler, NvmlBackend, PsutilBackend
from tests.test_sampler import FakeNvml

SKIPPED = "no GPU or no NVML (no NVIDIA driver): GPU checks skipped"


def test_doctor_on_this_machine_measures_the_cpu_loop_in_every_process(cli) -> None:  # type: ignore[no-untyped-def]
    done = cli(
        "doctor", "--seconds", "0.4", "--processes", "3", "--policy", "median:900%", "--json"
    )
    assert done.code == 0, done.err
    data = json.loads(done.out)
    ((loop),) = data["loops"]
    assert (loop["loop"], loop["processes"]) == ("cpu_loop", 3)
    assert loop["median_s"] > 0 and loop["between_pct"] >= 0 and loop["within_pct"] >= 0
    assert data["noise_pct"] == loop["between_pct"]
    assert (data["min_effect_pct"], data["supported"], data["failures"]) == (900.0, True, [])
    assert data["calibration_spread_pct"] >= 0  # 3 processes x start and end
    texts = [f["text"] for f in data["findings"]]
    assert SKIPPED in texts
    assert any(t.startswith("load average ") for t in texts)
    assert texts[-1].startswith(f"noise {loop['between_pct']:.1f}% between processes, below")
    assert done.err.count("process ") == 3  # progress on stderr


def test_doctor_exits_1_when_the_noise_reaches_the_minimum_effect(cli) -> None:  # type: ignore[no-untyped-def]
    done = cli("doctor", "--seconds", "0.2", "--processes", "2", "--policy", "median:0%")
    assert done.code == 1
    assert "bad   noise " in done.out and "not below the minimum effect 0%" in done.out
    assert done.out.endswith("this machine cannot support a minimum effect of 0%\n")
    assert f"info  {SKIPPED}\n" in done.out
    assert "\ncpu_loop           2 " in done.out


def test_doctor_bad_usage_is_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    for args in (("--seconds", "0"), ("--processes", "1"), ("--policy", "fast")):
        done = cli("doctor", *args)
        assert done.code == 2, args
        assert done.err.count("\n") == 1 and "Traceback" not in done.err


class GpuBox(FakeNvml):
    """A fake GPU whose persistence mode is off, with another program's process on it,
    and a clock that moves under a power cap."""

    def __init__(self) -> None:
        super().__init__(gpus=1)
        self._clocks = itertools.cycle([1980, 1700])
        self.other = 1  # init: in this PID namespace, and not ours

    def nvmlDeviceGetPersistenceMode(self, h: int) -> int:
        return 0

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=self.other, usedGpuMemory=2**30)]

    def nvmlDeviceGetClockInfo(self, h: int, kind: int) -> int:
        return next(self._clocks)


def test_the_gpu_checks_give_concrete_advice() -> None:
    nvml = NvmlBackend(GpuBox())
    sampler = DeviceSampler([nvml, PsutilBackend()], interval=0.02)
    d = diagnose(seconds=0.3, processes=2, min_effect=9.0, sampler=sampler)
    advice = {f.text: f.advice for f in d.findings}
    assert (
        advice[
            "GPU persistence mode off on GPU 0: the driver is loaded and unloaded "
            "around each process"
        ]
        == "sudo nvidia-smi -pm 1"
    )
    assert advice["1 other process(es) on the GPU"] == (
        "stop the other GPU process (nvidia-smi lists them)"
    )
    assert not any(t.startswith("SM clock") for t in advice)  # no GPU loop ran here
    assert SKIPPED not in advice
    # The GPU loops need CUDA, which this machine lacks: skipped, not failed.
    assert [loop.name for loop in d.loops] == ["cpu_loop"] and d.failures == ()


def test_the_verdict_is_the_largest_spread_against_the_minimum_effect() -> None:
    loops = (Loop("cpu_loop", (1.0, 1.02, 1.01), 0.1), Loop("launch", (1.0, 1.04, 1.0), 0.2))
    d = Diagnosis(5.0, 10.0, loops, 2.0)
    assert round(d.noise_pct or 0, 6) == 4.0 and d.supported
    assert not Diagnosis(4.0, 10.0, loops, 2.0).supported  # 4% is not below 4%
    assert not Diagnosis(5.0, 10.0, (), None).supported  # nothing measured
    assert noise_findings(Diagnosis(5.0, 10.0, (), None)) == [
        Finding("bad", "no loop measured in two or more processes: no noise estimate")
    ]
    calibrated = noise_findings(Diagnosis(5.0, 10.0, loops, 12.5))
    assert calibrated[0].text.startswith("the calibration loop differs by 12.5% between")


def _gpu_result(case: str, clocks: tuple[float, float], throttled: float) -> ResultRecord:
    metrics = (
        MetricRecord.from_samples(
            state.SM_CLOCK,
            [sum(clocks) / 2],
            unit="MHz",
            direction="higher",
            properties={"min_mhz": clocks[0], "max_mhz": clocks[1]},
        ),
        MetricRecord.from_samples(state.THROTTLED, [throttled], unit="fraction"),
    )
    return ResultRecord(CaseKey.of(case), "ok", metrics=metrics)


def test_clock_and_throttling_advice_from_the_gpu_loops() -> None:
    runs = [
        [
            _gpu_result("doctor.cpu", (345.0, 345.0), 0.0),  # an idle GPU: not judged
            _gpu_result("doctor.gpu_launch", (1200.0, 1980.0), 0.0),  # resting: not judged
            _gpu_result("doctor.gpu_matmul", (1755.0, 1980.0), 0.25),
        ],
        [_gpu_result("doctor.gpu_matmul", (1980.0, 1980.0), 0.0)],
    ]
    found = {f.text: f.advice for f in gpu_findings([0], [True], 0, runs)}
    assert found == {
        "GPU persistence mode on": None,
        "no other process on the GPU": None,
        "SM clock moved between 1755 and 1980 MHz across the loops: clocks are not locked": (
            "sudo nvidia-smi -lgc 1980,1980 (lock the SM clock; -rgc resets it)"
        ),
        "thermal or power throttling in up to 25% of the GPU readings of a loop": (
            "check cooling and the power limit (nvidia-smi -q -d PERFORMANCE,POWER); "
            "locked clocks below the throttle point steady it"
        ),
    }
    steady = [[_gpu_result("doctor.gpu_matmul", (1980.0, 1980.0), 0.0)]]
    texts = [f.text for f in gpu_findings([0], [None], None, steady)]
    assert texts == ["SM clock steady at 1980 MHz"]


def test_other_gpu_processes_from_another_pid_namespace_are_unknown() -> None:
    gpu = GpuBox()
    nvml = NvmlBackend(gpu)
    assert nvml.other_processes(set()) == 1
    assert nvml.other_processes({1}) == 0  # ours
    gpu.other = 2**22 + 1  # above PID_MAX_LIMIT: no pid of this namespace
    assert nvml.other_processes(set()) is None


def test_doctor_pinned_runs_every_process_on_the_cpus_given(cli) -> None:  # type: ignore[no-untyped-def]
    last = max(os.sched_getaffinity(0))
    done = cli(
        "doctor", "--seconds", "0.2", "--processes", "2", "--policy", "median:900%",
        "--affinity", str(last), "--json",
    )  # fmt: skip
    assert done.code == 0, done.err
    data = json.loads(done.out)
    ((loop),) = data["loops"]
    assert (data["affinity"], loop["cpus"]) == (str(last), [last, last])
    text = cli("doctor", "--seconds", "0.2", "--processes", "2", "--affinity", str(last))
    assert f"; pinned to CPUs {last}\n" in text.out
    assert "\ncpu_loop           2 " in text.out and f"  {last},{last}\n" in text.out


def test_processes_that_differ_on_different_cpus_get_a_way_to_test_placement() -> None:
    launch = Loop("launch", (6.6e-3, 10.3e-3, 6.7e-3), 0.5, (3, 9, 3))
    steady = Loop("matmul", (20.0e-3, 20.1e-3, 20.0e-3), 0.1, (3, 9, 3))
    found = noise_findings(Diagnosis(5.0, 10.0, (steady, launch), 1.0))
    assert found[0] == Finding(
        "info",
        "the launch loop's processes ran on CPUs 3,9 and differ by 55.2%: where a process "
        "lands can be what makes it slow",
        "run doctor again with --affinity 3: if the spread falls, measure with --affinity too",
    )
    # Already pinned, or all on one CPU, or below the minimum effect: nothing to test.
    assert noise_findings(Diagnosis(5.0, 10.0, (launch,), 1.0, affinity="3"))[0].level == "bad"
    same = Loop("launch", (6.6e-3, 10.3e-3), 0.5, (3, 3))
    assert noise_findings(Diagnosis(5.0, 10.0, (same,), 1.0))[0].level == "bad"
    assert noise_findings(Diagnosis(60.0, 10.0, (launch,), 1.0))[0].level == "ok"
