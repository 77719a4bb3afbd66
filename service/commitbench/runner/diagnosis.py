"""What `commitbench doctor` concludes (runner/doctor.py runs the loops): each loop's
spread over the processes (`Loop`), the findings with their advice (`Finding`), and the
verdict (`Diagnosis`).

Advice is concrete and only given where the state calls for it: stop the other load,
set the CPU governor to `performance`, isolate cores and run the workers on them
(`--affinity`), turn GPU persistence mode on, lock the GPU clocks (`nvidia-smi -lgc`), stop
the other GPU process, cool the GPU; where processes on different CPUs differ, run doctor
again pinned to one. Without a GPU or NVML the GPU checks are skipped with a line saying
so.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from commitbench.analysis.machinestate import STEAL_PCT, spread_pct
from commitbench.model import cpus, state
from commitbench.model.records import ResultRecord
from commitbench.runner.sampling import host

# A load average above this share of the CPUs means other work competes for them.
LOAD_SHARE = 0.25
# SM clocks that move by more than this during the GPU loops are not locked.
CLOCK_SWING = 0.01


@dataclass(frozen=True)
class Loop:
    """One loop over the processes: each process's median and within-process width."""

    name: str
    medians: tuple[float, ...]  # seconds, one per process
    within_pct: float | None  # the largest half-width of a process's 95% CI, % of median
    cpus: tuple[int | None, ...] = ()  # the CPU each process ended the loop on (None: unknown)

    @property
    def between_pct(self) -> float | None:
        return spread_pct(self.medians)

    def as_json(self) -> dict[str, Any]:
        return {
            "loop": self.name,
            "processes": len(self.medians),
            "median_s": statistics.median(self.medians) if self.medians else None,
            "within_pct": self.within_pct,
            "between_pct": self.between_pct,
            "cpus": list(self.cpus),
        }


@dataclass(frozen=True)
class Finding:
    """One line of the diagnosis: `ok`, `info`, `warn` or `bad`, and what to do."""

    level: str
    text: str
    advice: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"level": self.level, "text": self.text, "advice": self.advice}


@dataclass(frozen=True)
class Diagnosis:
    min_effect_pct: float
    seconds: float
    loops: tuple[Loop, ...]
    calibration_spread_pct: float | None
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    failures: tuple[str, ...] = ()  # loops that did not run (their messages)
    affinity: str | None = None  # the CPUs the processes were pinned to (--affinity)

    @property
    def noise_pct(self) -> float | None:
        """The largest between-process spread over the loops."""
        spreads = [b for b in (loop.between_pct for loop in self.loops) if b is not None]
        return max(spreads) if spreads else None

    @property
    def supported(self) -> bool:
        noise = self.noise_pct
        return not self.failures and noise is not None and noise < self.min_effect_pct

    def as_json(self) -> dict[str, Any]:
        return {
            "min_effect_pct": self.min_effect_pct,
            "seconds": self.seconds,
            "noise_pct": self.noise_pct,
            "supported": self.supported,
            "calibration_spread_pct": self.calibration_spread_pct,
            "loops": [loop.as_json() for loop in self.loops],
            "findings": [f.as_json() for f in self.findings],
            "failures": list(self.failures),
            "affinity": self.affinity,
        }


def values(
    runs: Sequence[Sequence[ResultRecord]], *names: str, cases: Sequence[str] = ()
) -> list[float]:
    """The samples of metrics `names` in every result (of `cases` only, when given)."""
    return [
        s
        for results in runs
        for r in results
        if not cases or r.case.label in cases
        for m in r.metrics
        if m.name in names and m.samples
        for s in m.samples
    ]


def host_findings(
    load: float | None, steal: float | None, runs: Sequence[Sequence[ResultRecord]]
) -> list[Finding]:
    out = []
    cpus = os.cpu_count() or 1
    if load is None:
        out.append(Finding("info", "load average not readable (/proc/loadavg)"))
    elif load > LOAD_SHARE * cpus:
        out.append(
            Finding(
                "warn",
                f"load average {load:.2f} on {cpus} CPUs before the loops: other work runs",
                "stop the other work (top / ps show it), or measure on an idle machine",
            )
        )
    else:
        out.append(Finding("ok", f"load average {load:.2f} on {cpus} CPUs"))
    if steal is not None and steal > STEAL_PCT / 5:
        out.append(
            Finding(
                "warn",
                f"CPU steal {steal:.1f}% while the loops ran: a virtual machine whose host "
                "gives its CPUs to other guests",
                "use a dedicated (bare-metal or dedicated-host) instance",
            )
        )
    ratios = values(runs, state.WALL_PER_CPU)
    waits = values(runs, state.RUN_WAIT)
    waited = (
        f"waiting for a core that other work held took {max(waits) * 100:.0f}% of the CPU "
        "loop's time in a process"
        if waits
        else f"the CPU loop's wall time was {max(ratios, default=0):.2f}x its CPU time in a "
        "process (it waited for a core)"
    )
    if state.contended(max(ratios, default=None), max(waits, default=None)):
        out.append(
            Finding(
                "warn",
                f"contention: {waited}",
                "stop the other work, or pin the runner to cores no one else uses (--affinity 2-7)",
            )
        )
    governors = host.governors()
    slow = {g: n for g, n in governors.items() if g != "performance"}
    if not governors:
        out.append(Finding("info", "CPU frequency governor not exposed (a VM or container)"))
    elif slow:
        names = ", ".join(f"{g} on {n} CPU(s)" for g, n in sorted(slow.items()))
        out.append(
            Finding(
                "warn",
                f"CPU governor {names}",
                "sudo cpupower frequency-set -g performance",
            )
        )
    else:
        out.append(Finding("ok", "CPU governor performance on every CPU"))
    isolated = host.isolated_cpus()
    if isolated == "":
        out.append(
            Finding(
                "info",
                "no isolated cores",
                "for the steadiest CPU timings, isolate cores (kernel parameters "
                "isolcpus=2-7 nohz_full=2-7) and run the workers on them (--affinity 2-7)",
            )
        )
    elif isolated:
        out.append(Finding("ok", f"isolated cores: {isolated}"))
    return out


def gpu_findings(
    indices: Sequence[int],
    modes: Sequence[bool | None],
    others: int | None,
    runs: Sequence[Sequence[ResultRecord]],
) -> list[Finding]:
    out = []
    off = [i for i, on in zip(indices, modes, strict=True) if on is False]
    if off:
        out.append(
            Finding(
                "warn",
                f"GPU persistence mode off on GPU {', '.join(map(str, off))}: the driver "
                "is loaded and unloaded around each process",
                "sudo nvidia-smi -pm 1",
            )
        )
    elif modes and all(m is True for m in modes):
        out.append(Finding("ok", "GPU persistence mode on"))
    seen = [int(v) for v in values(runs, state.OTHER_GPU_PROCESSES)]
    worst = max([*seen, *([others] if others is not None else [])], default=None)
    if worst:
        out.append(
            Finding(
                "warn",
                f"{worst} other process(es) on the GPU",
                "stop the other GPU process (nvidia-smi lists them)",
            )
        )
    elif worst == 0:
        out.append(Finding("ok", "no other process on the GPU"))
    # The matmul keeps the GPU busy: its clock should not move. (During the CPU loop
    # the GPU idles, and between tiny launches its clock may rest: neither says much.)
    clocks = [
        float(m.properties[k])
        for results in runs
        for r in results
        if r.case.label == "doctor.gpu_matmul"
        for m in r.metrics
        if m.name == state.SM_CLOCK
        for k in ("min_mhz", "max_mhz")
        if k in m.properties
    ]
    if clocks and (max(clocks) - min(clocks)) > CLOCK_SWING * max(clocks):
        top = int(max(clocks))
        out.append(
            Finding(
                "warn",
                f"SM clock moved between {min(clocks):.0f} and {max(clocks):.0f} MHz "
                "across the loops: clocks are not locked",
                f"sudo nvidia-smi -lgc {top},{top} (lock the SM clock; -rgc resets it)",
            )
        )
    elif clocks:
        out.append(Finding("ok", f"SM clock steady at {statistics.median(clocks):.0f} MHz"))
    throttled = values(runs, state.THROTTLED, cases=("doctor.gpu_launch", "doctor.gpu_matmul"))
    if throttled and max(throttled) > 0:
        out.append(
            Finding(
                "warn",
                f"thermal or power throttling in up to {max(throttled) * 100:.0f}% of the "
                "GPU readings of a loop",
                "check cooling and the power limit (nvidia-smi -q -d PERFORMANCE,POWER); "
                "locked clocks below the throttle point steady it",
            )
        )
    return out


def placement_finding(d: Diagnosis) -> Finding | None:
    """Where processes ran on different CPUs and differ by more than the minimum effect,
    placement is one state that can make them differ: say how to test it."""
    if d.affinity is not None:
        return None
    noisy = [
        loop
        for loop in d.loops
        if (loop.between_pct or 0.0) >= d.min_effect_pct
        and len({c for c in loop.cpus if c is not None}) > 1
    ]
    if not noisy:
        return None
    loop = noisy[0]
    seen = cpus.as_text(c for c in loop.cpus if c is not None)
    return Finding(
        "info",
        f"the {loop.name} loop's processes ran on CPUs {seen} and differ by "
        f"{loop.between_pct:.1f}%: where a process lands can be what makes it slow",
        f"run doctor again with --affinity {min(c for c in loop.cpus if c is not None)}: "
        "if the spread falls, measure with --affinity too",
    )


def noise_findings(d: Diagnosis) -> list[Finding]:
    out = []
    for failure in d.failures:
        out.append(Finding("bad", f"a loop did not run: {failure}"))
    calib = d.calibration_spread_pct
    if calib is not None and calib >= d.min_effect_pct:
        out.append(
            Finding(
                "warn",
                f"the calibration loop differs by {calib:.1f}% between processes (start and "
                "end of each): processes differ in speed by themselves",
                "measure with several processes per commit (--processes), and see the "
                "warnings above",
            )
        )
    placement = placement_finding(d)
    if placement is not None:
        out.append(placement)
    noise = d.noise_pct
    if noise is None:
        out.append(Finding("bad", "no loop measured in two or more processes: no noise estimate"))
    elif noise >= d.min_effect_pct:
        out.append(
            Finding(
                "bad",
                f"noise {noise:.1f}% between processes is not below the minimum effect "
                f"{d.min_effect_pct:g}%: a change of that size cannot be told from noise here",
                "act on the warnings above, or raise the policy (--policy median:N%)",
            )
        )
    else:
        out.append(
            Finding(
                "ok",
                f"noise {noise:.1f}% between processes, below the minimum effect "
                f"{d.min_effect_pct:g}%",
            )
        )
    return out
