"""CPU lists as Linux writes them (`0-3,8,10-11`): what `--affinity` takes and what the
machine state records of where a worker ran.

Why pin at all: issue 13 measured a launch-bound case on an H200 at two levels, about
6.6 ms and 10.3 ms for 1,000 launches, fixed for the life of a worker process and drawn
anew by each: a per-process state of the host's launch path. Where a process runs (its
core, that core's clock and socket, in a VM the host thread behind the virtual CPU) is
one such state; pyperf pins its workers for the same reason (`--affinity`), and
NVIDIA's advice is to run a GPU's host threads on the CPUs local to it. Each result keeps
the CPU its worker was on after the case and the CPUs it was allowed (the properties of
state.calibration_case_ms), so a spread that follows placement can be seen before anyone
pins anything.
"""

from __future__ import annotations

from collections.abc import Iterable

# Far above any machine's CPU count, low enough that a typo cannot ask for a huge set.
MAX_CPU = 65_535


def parse(text: str) -> frozenset[int]:
    """`0-3,8` → {0, 1, 2, 3, 8}. ValueError, naming the bad part, for anything else:
    an empty list, a reversed range, a negative or absurd number."""
    cpus: set[int] = set()
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError(f"{text!r} is not a CPU list (like 0-3,8)")
    for part in parts:
        low, sep, high = part.partition("-")
        try:
            first = _number(low)
            last = _number(high) if sep else first
        except ValueError:
            raise ValueError(f"{part!r} in {text!r} is not a CPU or a range of CPUs") from None
        if last < first:
            raise ValueError(f"{part!r} in {text!r}: the range ends before it starts")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def _number(text: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ValueError(text)
    n = int(text)
    if n > MAX_CPU:
        raise ValueError(text)
    return n


def as_text(cpus: Iterable[int]) -> str:
    """{0, 1, 2, 3, 8} → `0-3,8`: the shortest list, in order."""
    ordered = sorted(set(cpus))
    spans: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        spans.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(spans)


def outside(wanted: frozenset[int], allowed: frozenset[int]) -> str | None:
    """The one line that says why `wanted` cannot be used where `allowed` are the CPUs
    this process may run on, or None when it can."""
    missing = wanted - allowed
    if not missing:
        return None
    return (
        f"--affinity {as_text(wanted)}: CPU {as_text(missing)} is not one this process may "
        f"run on ({as_text(allowed)})"
    )
