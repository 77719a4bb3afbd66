"""The identity of a bench case: its key (a dotted function name and its parameters),
the label that names it across commits, and the one rule for choosing cases by a
pattern. Apart from records.py because every layer (the bench API, the runner's
selection, the stores, the analysis and the dashboards' SQL) depends on these rules,
and a label must never change meaning.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from commitbench.model.checks import RecordError

_NAME = re.compile(r"[A-Za-z_][\w.]*")  # fullmatch: "$" would let a final newline in
# A string value containing one of these is quoted in a label, as is one that reads as
# another JSON value ("1", "true", "null"): so no two parameter mappings share a label.
_LABEL_PUNCTUATION = frozenset(',=[]"')

ParamValue = str | int | float | bool | None


# What json.loads accepts as a whole text, without raising and catching an exception
# for every plain string: a number, one of its words, or (rare) an object.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_JSON_WORDS = frozenset({"true", "false", "null", "NaN", "Infinity", "-Infinity"})


def _reads_as_json(text: str) -> bool:
    bare = text.strip(" \t\n\r")
    if bare in _JSON_WORDS or _JSON_NUMBER.fullmatch(bare):
        return True
    if not bare.startswith("{"):
        return False  # a string or an array would hold '"' or '[', quoted anyway
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _shown(value: ParamValue) -> str:
    """A value as a label shows it: JSON, except a plain string, which stays bare."""
    if not isinstance(value, str):
        return json.dumps(value)
    if value == "" or _LABEL_PUNCTUATION.intersection(value) or _reads_as_json(value):
        return json.dumps(value, ensure_ascii=False)
    return value


def case_label(name: str, params: Mapping[str, ParamValue]) -> str:
    """`module.function[k=v,...]` with keys sorted, so the id is stable across commits.

    Values are JSON (`n=8192`, `p=0.5`, `on=true`, `x=null`) except plain strings, shown
    bare (`shape=4k`); a string that would read as something else (`"1"`, `"true"`,
    `"a,b=c"`, `""`) is quoted. So the label is injective: two mappings that differ by a
    key, a value or a value's type never share one (tests/model/test_case_identity.py).
    """
    if not params:
        return name
    parts = [f"{key}={_shown(params[key])}" for key in sorted(params)]
    return f"{name}[{','.join(parts)}]"


def case_matches(label: str, pattern: str | None) -> bool:
    """The one rule for choosing cases by a pattern (`run`, `check` and `enqueue`
    --filter, `report --case`, --threshold and `[tool.commitbench.thresholds]`): a glob
    (fnmatch, case-sensitive) when the pattern has a wildcard `*`, `?` or `[`, else a
    substring of the case id. No pattern chooses every case."""
    if pattern is None:
        return True
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(label, pattern)
    return pattern in label


def exact_pattern(label: str) -> str:
    """A pattern that chooses the case `label` and no other under case_matches: a glob
    with each wildcard character of the id in a class of its own (`[[]`), and the first
    character in one when the id has none (as a substring, `a.step` would also choose
    `a.steps`). grafana/common.py EXACT_PATTERN writes the same in SQL."""
    escaped = "".join(f"[{ch}]" if ch in "*?[" else ch for ch in label)
    return escaped if escaped != label or not label else f"[{label[0]}]{label[1:]}"


@dataclass(frozen=True, eq=False)
class CaseKey:
    """Identity of a bench case: its function's dotted name and its parameters.

    Two keys are equal when their labels are: Python's `1 == 1.0 == True` must not make
    the cases `f[x=1]`, `f[x=1.0]` and `f[x=true]` one.
    """

    name: str
    params: tuple[tuple[str, ParamValue], ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise RecordError(f"case name {self.name!r} is not a dotted identifier")
        keys = [k for k, _ in self.params]
        if keys != sorted(set(keys)):
            raise RecordError(f"case {self.name}: params must have sorted, unique keys")
        for key, value in self.params:
            # A parameter is a keyword argument of the bench function: an identifier.
            if not isinstance(key, str) or not key.isidentifier():
                raise RecordError(f"case {self.name}: param name {key!r} is not an identifier")
            if not isinstance(value, str | int | float | bool | type(None)):
                raise RecordError(f"case {self.name}: param {key} is not a scalar")
            if isinstance(value, float) and not math.isfinite(value):
                raise RecordError(f"case {self.name}: param {key} is not finite")

    @classmethod
    def of(cls, name: str, params: Mapping[str, ParamValue] | None = None) -> CaseKey:
        return cls(name, tuple(sorted((params or {}).items())))

    @property
    def params_dict(self) -> dict[str, ParamValue]:
        return dict(self.params)

    @cached_property
    def label(self) -> str:
        return case_label(self.name, self.params_dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CaseKey):
            return NotImplemented
        return self.label == other.label

    def __hash__(self) -> int:
        return hash(self.label)
