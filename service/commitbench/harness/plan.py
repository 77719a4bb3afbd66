"""The cases a worker will report for a module: its benches for the profile, each
swept by --param (harness/sweeping.py), expanded into cases and narrowed by --case and
--skip.

A case whose parameters hold a character no store can keep (NUL; model/text.py) is not
run: its bench reports one `failed` result, named after the bench function, that lists
the values; the bench's other cases run.

Separate from the worker's main loop (worker.py), which lists these plans (--list) or
runs them; nothing here runs bench code beyond the grids its benches declare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from commitbench.harness import sweeping
from commitbench.harness.bench import Bench
from commitbench.model import sweep
from commitbench.model.cases import CaseKey, ParamValue
from commitbench.model.text import unstorable
from commitbench.model.words import plural


@dataclass(frozen=True)
class Planned:
    """A case this worker will report: run, or, with `refused`, failed without running."""

    spec: Bench
    case: CaseKey
    refused: str | None = None


def _unstorable(params: dict[str, ParamValue]) -> list[tuple[str, ParamValue, str]]:
    """Each parameter whose value no store can hold: name, value, the character."""
    found = []
    for key, value in params.items():
        char = unstorable(value) if isinstance(value, str) else None
        if char is not None:
            found.append((key, value, char))
    return found


def expand(spec: Bench) -> list[Planned]:
    """The bench's cases; those whose parameters no store can hold (which no CaseKey may
    name either) become one refused entry named after the bench function, first."""
    good: list[CaseKey] = []
    bad: dict[str, str] = {}  # `param k='v' holds U+0000`, once per parameter value
    refused = 0
    for params in spec.grid():
        found = _unstorable(params)
        if not found:
            good.append(CaseKey.of(spec.name, params))
            continue
        refused += 1
        for key, value, char in found:
            bad.setdefault(f"param {key}={value!r}", char)
    if not refused:
        return [Planned(spec, case) for case in good]
    shown = ", ".join(f"{value} holds {char}" for value, char in bad.items())
    why = (
        f"{plural(refused, 'case')} of {spec.name} not run: {shown}, which PostgreSQL cannot store"
    )
    return [Planned(spec, CaseKey.of(spec.name), why)] + [Planned(spec, case) for case in good]


def select_cases(
    benches: Sequence[Bench],
    profile: str,
    only: Sequence[str],
    skip: Sequence[str],
    overrides: sweep.Overrides = (),
) -> list[Planned]:
    chosen = []
    for declared in benches:
        if profile not in declared.profiles:
            continue
        spec, refused = sweeping.swept(declared, overrides)
        # A value that does not fit the bench: one failed result named after it.
        expanded = [Planned(spec, CaseKey.of(spec.name), refused)] if refused else expand(spec)
        for planned in expanded:
            label = planned.case.label
            if only and label not in only:
                continue
            if label not in skip:
                chosen.append(planned)
    return chosen
