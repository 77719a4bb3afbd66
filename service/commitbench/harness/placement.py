"""Where this worker runs: pinned to the CPUs of `--affinity` before the bench module is
imported (so its threads and its libraries' thread pools inherit the set), and the CPU it
is on, read when a case ends (model/cpus.py says why both are kept)."""

from __future__ import annotations

import os

from commitbench.model import cpus


def pin(wanted: frozenset[int]) -> None:
    """Run this process (and what it starts) only on `wanted`. OSError where the system
    refuses: the runner checked the set against its own, so that means a bug or a
    container that forbids it, and the worker says so rather than run unpinned."""
    os.sched_setaffinity(0, wanted)


def allowed() -> frozenset[int]:
    """The CPUs this process may run on."""
    return frozenset(os.sched_getaffinity(0))


def current_cpu(stat: str = "/proc/self/stat") -> int | None:
    """The CPU this process last ran on (field 39 of /proc/self/stat: `processor`), None
    where there is no /proc. The command name (field 2) may hold spaces and parentheses,
    so the fields are counted after its last ')'."""
    try:
        with open(stat, encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    # Fields 3.. follow the name: `processor`, field 39, is the 37th of them.
    try:
        return int(fields[36])
    except (IndexError, ValueError):
        return None


def where() -> dict[str, object]:
    """The properties kept with a case's calibration: the CPU it ended on and the CPUs
    allowed (`cpus`, a CPU list)."""
    return {"cpu": current_cpu(), "cpus": cpus.as_text(allowed())}
