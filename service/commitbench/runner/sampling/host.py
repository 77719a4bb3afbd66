"""The host's state from /proc and /sys: load average, CPU steal, the CPU governor.

Read by the orchestrator (the sampler, at each case's start and end; `commitbench
doctor`), never by the bench process. Every reader returns None where the file is not
there or not readable (not Linux, a restricted container), and the state is then not
recorded rather than guessed.

- Load: the one-minute load average, /proc/loadavg's first field (the run queue,
  exponentially damped over a minute: a case's own threads count in it too).
- Steal: the share of CPU time the hypervisor gave to other guests, from the aggregate
  `cpu` line of /proc/stat (proc(5): user nice system idle iowait irq softirq steal ...,
  in USER_HZ ticks): steal delta over total delta between two snapshots, in %.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

PROC = Path("/proc")
SYS_CPU = Path("/sys/devices/system/cpu")


class CpuTimes(NamedTuple):
    """Ticks since boot, all CPUs together: every state, and steal."""

    total: int
    steal: int


def load_average(proc: Path = PROC) -> float | None:
    """The one-minute load average."""
    try:
        return float((proc / "loadavg").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_times(proc: Path = PROC) -> CpuTimes | None:
    """The aggregate `cpu` line of /proc/stat. guest and guest_nice (fields 9, 10) are
    already inside user and nice, so they are not added again."""
    try:
        with (proc / "stat").open(encoding="ascii") as fh:
            for line in fh:
                fields = line.split()
                if fields and fields[0] == "cpu":
                    ticks = [int(v) for v in fields[1:9]]
                    steal = ticks[7] if len(ticks) > 7 else 0
                    return CpuTimes(sum(ticks), steal)
    except (OSError, ValueError):
        return None
    return None


def steal_pct(before: CpuTimes | None, after: CpuTimes | None) -> float | None:
    """Steal over the span between two snapshots, in % of all CPU time; None when a
    snapshot is missing or no tick passed (a span shorter than 1/USER_HZ)."""
    if before is None or after is None:
        return None
    total = after.total - before.total
    if total <= 0:
        return None
    return 100.0 * max(0, after.steal - before.steal) / total


def governors(sys_cpu: Path = SYS_CPU) -> dict[str, int]:
    """How many CPUs run each cpufreq governor (`performance`, `powersave`, ...); empty
    where cpufreq is not exposed (most VMs and containers)."""
    found: dict[str, int] = {}
    for path in sorted(sys_cpu.glob("cpu[0-9]*/cpufreq/scaling_governor")):
        try:
            name = path.read_text(encoding="ascii").strip()
        except OSError:
            continue
        found[name] = found.get(name, 0) + 1
    return found


def isolated_cpus(sys_cpu: Path = SYS_CPU) -> str | None:
    """The kernel's isolated CPU list (`isolcpus=`), e.g. "2-7"; "" when none."""
    try:
        return (sys_cpu / "isolated").read_text(encoding="ascii").strip()
    except OSError:
        return None
