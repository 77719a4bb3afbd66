"""Where this worker runs, and whether it had to wait for a CPU.

Pinned to the CPUs of `--affinity` before the bench module is imported (so its threads and
its libraries' thread pools inherit the set), and the CPU it is on, read when a case ends
(model/cpus.py says why both are kept).

Waiting: each thread's `/proc/self/task/<tid>/schedstat` (Linux's sched_info) holds the
nanoseconds it ran on a CPU and the nanoseconds it was runnable but waited on a run queue.
Their sums over the threads, read around each host-timed batch, give how much other work
stretched the batches (model/state.py: RUN_WAIT; harness/context.py: the wait, where the
process left some of its CPUs unused): contention measured directly, where wall over CPU
time only infers it (a case that sleeps, reads files or waits for a child has a large
wall/CPU with no one competing; four threads on two cores shared with another program
have a wall/CPU below 1 while they wait)."""

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


def thread_times(task_dir: str = "/proc/self/task") -> dict[int, tuple[int, int]] | None:
    """Each thread's (nanoseconds on a CPU, nanoseconds waiting for one), None where the
    kernel does not keep them. A thread that ends while it is read is left out."""
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return None
    out: dict[int, tuple[int, int]] = {}
    for tid in tids:
        try:
            with open(f"{task_dir}/{tid}/schedstat", "rb") as f:
                fields = f.read().split()
            out[int(tid)] = (int(fields[0]), int(fields[1]))
        except (OSError, ValueError, IndexError):
            continue
    return out or None


def ran_and_waited(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
) -> tuple[int, int]:
    """Nanoseconds run and waited between two readings, summed over the threads in both
    (a thread started in between counts from its start)."""
    ran = waited = 0
    for tid, (run1, wait1) in after.items():
        run0, wait0 = before.get(tid, (0, 0))
        ran += max(0, run1 - run0)
        waited += max(0, wait1 - wait0)
    return ran, waited


def where() -> dict[str, object]:
    """The properties kept with a case's calibration: the CPU it ended on and the CPUs
    allowed (`cpus`, a CPU list)."""
    return {"cpu": current_cpu(), "cpus": cpus.as_text(allowed())}
