"""`commitbench doctor`: can this machine tell the policy's minimum effect from noise?

It looks at the machine's state (sampling/host.py, the NVML backend: load, CPU steal,
the CPU governor, isolated cores, GPU persistence mode, other processes on the GPUs,
clocks and throttling) and times fixed loops (harness/doctorloops.py: a CPU loop and,
where there is a GPU, a launch-bound and a matmul loop) in `processes` fresh worker
processes one after another, about `seconds` in all, with the sampler watching as it
does for a run.

The noise estimate is the level where the variance is (Kalibera & Jones 2013): for
each loop, the spread of the processes' medians, (max - min) / median in %
(analysis/machinestate.spread_pct, the same figure compare shows for the calibration).
The within-process figure (half the width of the 95% interval of a process's median,
relative) is shown beside it: a machine whose processes agree only with themselves
looks precise in one run and is not. The machine supports the policy when the largest
between-process spread is below the minimum effect (median:5% -> 5%): a change smaller
than what fresh processes of the same code differ by cannot be told from noise there.
With 4 processes the spread is a rough estimate (a range of 4 values); more processes
or seconds make it steadier.

The findings, their advice and the verdict are runner/diagnosis.py's.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

from commitbench.analysis.machinestate import spread_pct
from commitbench.model import cpus, state
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import ResultRecord
from commitbench.runner.diagnosis import (
    Diagnosis,
    Finding,
    Loop,
    gpu_findings,
    host_findings,
    noise_findings,
    values,
)
from commitbench.runner.launcher import CaseRun, WorkerOptions, run_module
from commitbench.runner.sampling import host
from commitbench.runner.sampling.sampler import DeviceSampler, NvmlBackend, PsutilBackend
from commitbench.runner.sampling.state import with_calibration

MODULE = "commitbench.harness.doctorloops"
BUDGET_ENV = "COMMITBENCH_DOCTOR_BUDGET_S"  # harness/doctorloops.py reads it
LOOPS = {"doctor.cpu": "cpu_loop", "doctor.gpu_launch": "launch", "doctor.gpu_matmul": "matmul"}


def _metric(result: ResultRecord, name: str) -> MetricRecord | None:
    return next((m for m in result.metrics if m.name == name), None)


def _loops(runs: Sequence[Sequence[ResultRecord]]) -> tuple[Loop, ...]:
    """Per loop, each process's median and the widest within-process interval."""
    out = []
    for case, metric in LOOPS.items():
        medians, widths, placed = [], [], []
        for results in runs:
            for r in results:
                m = _metric(r, metric) if r.case.label == case and r.status == "ok" else None
                if m is None or m.median is None or m.median <= 0:
                    continue
                medians.append(m.median)
                if m.ci_low is not None and m.ci_high is not None:
                    widths.append(50.0 * (m.ci_high - m.ci_low) / m.median)
                calibration = _metric(r, state.CALIBRATION_CASE)
                cpu = calibration.properties.get("cpu") if calibration is not None else None
                placed.append(cpu if isinstance(cpu, int) else None)
        if medians:
            width = max(widths) if widths else None
            out.append(Loop(metric, tuple(medians), width, tuple(placed)))
    return tuple(out)


def diagnose(
    *,
    seconds: float = 10.0,
    processes: int = 4,
    min_effect: float = 0.05,
    device: str = "auto",
    affinity: frozenset[int] | None = None,
    progress: Callable[[str], None] = lambda _: None,
    sampler: DeviceSampler | None = None,
    environ: dict[str, str] | None = None,
) -> Diagnosis:
    """Check the machine and time the loops; see the module docstring."""
    if seconds <= 0 or processes < 2:
        raise ValueError("seconds must be > 0 and processes >= 2")
    nvml = NvmlBackend.available() if sampler is None else sampler.nvml
    gpu = nvml is not None and device != "cpu"
    loops_per_process = 3 if gpu else 1
    budget = seconds / (processes * loops_per_process)
    findings: list[Finding] = []
    load_before = host.load_average()
    cpus_before = host.cpu_times()
    others_before = nvml.other_processes(set()) if gpu and nvml is not None else None
    modes = nvml.persistence_mode() if gpu and nvml is not None else []
    env = dict(os.environ if environ is None else environ)
    env[BUDGET_ENV] = repr(budget)
    options = WorkerOptions(
        profile="full" if gpu else "smoke",
        device="auto" if gpu else "cpu",
        timeout_s=max(120.0, 10 * budget * loops_per_process),
        env=env,
        pass_env=(BUDGET_ENV,),
        affinity=affinity,
    )
    watch = sampler or DeviceSampler([*([nvml] if nvml is not None else []), PsutilBackend()])
    runs: list[list[ResultRecord]] = []
    failures: list[str] = []
    with watch:
        for i in range(processes):
            progress(f"process {i + 1}/{processes}: {loops_per_process} loop(s) of {budget:.2f} s")
            done: list[CaseRun] = list(run_module(MODULE, options, observer=watch))
            results = []
            for run in done:
                result = watch.annotate(run)
                result = with_calibration(result, run.process)
                if result.status not in ("ok", "skipped"):
                    failures.append(f"{result.case.label}: {result.status}: {result.error}")
                results.append(result)
            runs.append(results)
    steal = host.steal_pct(cpus_before, host.cpu_times())
    loops = _loops(runs)
    calib = spread_pct(values(runs, state.CALIBRATION_START, state.CALIBRATION_END))
    findings += host_findings(load_before, steal, runs)
    if gpu and nvml is not None:
        findings += gpu_findings(nvml.indices, modes, others_before, runs)
    else:
        findings.append(Finding("info", "no GPU or no NVML (no NVIDIA driver): GPU checks skipped"))
    pinned = cpus.as_text(affinity) if affinity is not None else None
    diagnosis = Diagnosis(min_effect * 100, seconds, loops, calib, (), tuple(failures), pinned)
    findings += noise_findings(diagnosis)
    return dataclasses.replace(diagnosis, findings=tuple(findings))
