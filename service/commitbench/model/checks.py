"""What counts as a measurement, and what the stores can hold: the rules every record
passes on construction (model/records.py), so recording a run and importing one refuse
the same values with the same words.

- A measured number is finite: NaN and +-inf are not measurements (a NaN median orders
  nowhere, an infinite mean charts as nothing, and the CSV and wire JSON cannot carry
  them). Durations, CPU %, RSS and the other sampler figures are also >= 0.
- A time lies between 1970-01-01 and 2200-01-01 (UTC): nothing commitbench measures
  happened before the Unix epoch, and a year far out is a damaged clock or file
  (`0001-01-01T00:00:00+14:00` is a BC date in UTC, which PostgreSQL stores and then
  no Python datetime can read back).
- An integer fits the PostgreSQL column that holds it (store/tables.py): `smallint`,
  `integer` or `bigint` (tests/model/test_checks.py holds these to the table types).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from commitbench.model.text import unstorable

EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)

# Ranges of PostgreSQL's integer types.
INT2 = (-(2**15), 2**15 - 1)
INT4 = (-(2**31), 2**31 - 1)
INT8 = (-(2**63), 2**63 - 1)


class RecordError(ValueError):
    """A value that must not be recorded (model/records.py re-exports it)."""


def finite(value: float | None, what: str) -> None:
    """None or a finite number (int or float, not bool)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{what} is not a number ({type(value).__name__})")
    if not math.isfinite(value):
        raise RecordError(f"{what} is {value}, not a measurement")


def non_negative(value: float | None, what: str) -> None:
    """None or a finite number >= 0."""
    finite(value, what)
    if value is not None and value < 0:
        raise RecordError(f"{what} is negative ({value})")


def measured(value: float | None) -> float | None:
    """`value` when it is a finite number >= 0, else None: for readings taken by the
    sampler, where a glitch in one tick must cost that figure, not the case."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def integer(value: int | None, what: str, bounds: tuple[int, int]) -> None:
    """None or an int (not bool) within `bounds` (INT2, INT4 or INT8)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{what} is not an integer ({type(value).__name__})")
    low, high = bounds
    if not low <= value <= high:
        raise RecordError(f"{what} {value} is out of range ({low}..{high})")


def moment(value: datetime | None, what: str) -> None:
    """None or an aware time between EARLIEST and LATEST (the caller checks awareness)."""
    if value is None or value.utcoffset() is None:
        return
    # Aware comparison subtracts the offsets as timedeltas, so year 1 at +14:00 (before
    # year 1 in UTC) compares without overflowing.
    if not EARLIEST <= value < LATEST:
        raise RecordError(
            f"{what} {value.isoformat()} is outside {EARLIEST.year}..{LATEST.year - 1}"
        )


def text(value: object, what: str) -> None:
    """A string PostgreSQL text can hold (no NUL, no lone surrogate)."""
    if not isinstance(value, str):
        raise RecordError(f"{what} is not a string ({type(value).__name__})")
    found = unstorable(value)
    if found is not None:
        raise RecordError(f"{what} holds {found}, which PostgreSQL cannot store")


def json_value(value: object, what: str) -> None:
    """A JSON document (keys and strings anywhere in it) PostgreSQL jsonb can hold: no
    unstorable character, finite numbers only."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            text(item, what)
        elif isinstance(item, float):
            finite(item, what)
        elif isinstance(item, dict):
            for key, inner in item.items():
                text(key, f"{what}: a key")
                stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif item is not None and not isinstance(item, bool | int):
            raise RecordError(f"{what} holds a {type(item).__name__}, not JSON")
