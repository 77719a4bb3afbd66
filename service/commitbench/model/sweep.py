"""Parameter sweeps from the command line: `--param NAME=V1,V2,...` (issue 15).

`run`, `check`, `bisect`, `compare --measure` and `enqueue` take `--param`, repeatable.
The values replace the declared grid of that parameter in every selected bench that
declares it; the cross product with its other parameters stays, and a bench that does
not declare it runs its grid unchanged. Values need not be among the declared ones:
those are new cases. The values are parameters like any others, so they are part of the
case id (`bench_model.compute[size=8]`) and a swept case is a series like any other.

The orchestrator never imports a bench, so it keeps the values as they were typed
(`Overrides`); each worker types them per bench (`typed`) from the values that bench
declares for the parameter: all ints -> int, ints and floats -> float, all bools ->
true/false (any case), anything else -> the text. Values are separated by commas (a
string value cannot hold one) and stripped of surrounding blanks; repeated values, once
typed, count once.

Pure: the CLI parses with `parse`, the worker (harness/worker.py) applies with `swept`,
and the runner checks what the workers found (runner/selection.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from commitbench.model.cases import ParamValue

# Names in the order given, each with its values as typed on the command line.
Overrides = tuple[tuple[str, tuple[str, ...]], ...]
Grid = tuple[tuple[str, tuple[ParamValue, ...]], ...]

_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_SYNTAX = "expected NAME=V1,V2,... (e.g. --param batch=1,4)"


def parse(items: Sequence[str]) -> Overrides:
    """The overrides of `--param` options, in the order given; ValueError (one line)
    for malformed syntax or a name given twice."""
    found: dict[str, tuple[str, ...]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--param {item!r}: {_SYNTAX}")
        if not name.isidentifier():
            raise ValueError(f"--param {item!r}: {name!r} is not a parameter name")
        values = tuple(v.strip() for v in text.split(","))
        if not text.strip():
            raise ValueError(f"--param {item!r}: no values; {_SYNTAX}")
        if "" in values:
            raise ValueError(f"--param {item!r}: an empty value; {_SYNTAX}")
        if name in found:
            raise ValueError(f"--param {name} given twice: list its values once")
        found[name] = values
    return tuple(found.items())


def to_json(overrides: Overrides) -> dict[str, list[str]]:
    """What the worker's `--params`, a job's `params` and a run's selection hold."""
    return {name: list(values) for name, values in overrides}


def from_json(data: Mapping[str, Any] | None) -> Overrides:
    """Overrides from to_json's form; ValueError for anything else."""
    if not data:
        return ()
    out = []
    for name, values in data.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"param name {name!r} is not an identifier")
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) for v in values)
        ):
            raise ValueError(f"param {name}: values must be a non-empty list of strings")
        out.append((name, tuple(values)))
    return tuple(out)


def kind(declared: Sequence[ParamValue]) -> str:
    """The type the command line's values take: int, float, bool or str."""
    if declared and all(isinstance(v, bool) for v in declared):
        return "bool"
    numbers = [v for v in declared if isinstance(v, int | float) and not isinstance(v, bool)]
    if declared and len(numbers) == len(declared):
        return "int" if all(isinstance(v, int) for v in numbers) else "float"
    return "str"


def _typed_one(text: str, want: str) -> ParamValue | None:
    if want == "int":
        return int(text) if _INT.fullmatch(text) else None
    if want == "float":
        value = float(text) if _FLOAT.fullmatch(text) else math.nan
        return value if math.isfinite(value) else None
    if want == "bool":
        return {"true": True, "false": False}.get(text.lower())
    return text


def typed(
    bench: str, name: str, declared: Sequence[ParamValue], values: Sequence[str]
) -> tuple[ParamValue, ...]:
    """`values` typed like the bench's declared values of `name`, repeats dropped;
    ValueError naming the bench, the parameter and the value that does not parse."""
    want = kind(declared)
    out: dict[str, ParamValue] = {}  # keyed by type and value: 1 and true stay apart
    for text in values:
        value = _typed_one(text, want)
        if value is None:
            shown = ", ".join(map(_shown, declared))
            raise ValueError(
                f"--param {name}: {text!r} is not {_ARTICLE[want]} {want}, as "
                f"{bench} declares {name} ({shown})"
            )
        out.setdefault(f"{type(value).__name__}:{value!r}", value)
    return tuple(out.values())


_ARTICLE = {"int": "an", "float": "a", "bool": "a", "str": "a"}


def _shown(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def swept(bench: str, grid: Grid, overrides: Overrides) -> Grid:
    """The bench's grid with each parameter it declares among `overrides` taking the
    override's values (typed); the others, and their order, as declared."""
    given = dict(overrides)
    return tuple(
        (key, typed(bench, key, values, given[key]) if key in given else values)
        for key, values in grid
    )


def unknown(overrides: Overrides, declared: set[str]) -> str | None:
    """The line for the first overridden name no selected bench declares, or None."""
    for name, _ in overrides:
        if name not in declared:
            return (
                f"--param {name}: no selected bench declares a parameter {name!r} "
                f"(declared: {', '.join(sorted(declared)) or 'none'})"
            )
    return None
