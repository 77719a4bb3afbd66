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
- A name, a unit, a JSON value holds no character PostgreSQL text cannot (NUL, a lone
  surrogate: model/text.py); free text such as an error is escaped instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from commitbench.model.text import unstorable

if TYPE_CHECKING:  # records import these rules; the rules only name its type
    from commitbench.model.records import DeviceSample

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


def check_values(values: Sequence[float], what: str) -> None:
    """Every sample a finite number: a NaN or infinite sample is not a measurement."""
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RecordError(f"{what}: sample {i + 1} is not a number")
        if not math.isfinite(value):
            raise RecordError(f"{what}: sample {i + 1} is {value}, not a measurement")


def integer(value: int | None, what: str, bounds: tuple[int, int]) -> None:
    """None or an int (not bool) within `bounds` (INT2, INT4 or INT8)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{what} is not an integer ({type(value).__name__})")
    low, high = bounds
    if not low <= value <= high:
        raise RecordError(f"{what} {value} is out of range ({low}..{high})")


def one_of(value: str, allowed: Sequence[str], what: str) -> None:
    """One of the allowed words (a status, a trigger, a direction)."""
    if value not in allowed:
        raise RecordError(f"{what} {value!r} is not one of {', '.join(allowed)}")


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


def aware(value: datetime | None, what: str) -> None:
    """None, or an aware time with a whole-second offset, between EARLIEST and LATEST."""
    if value is None:
        return
    offset = value.utcoffset()
    if offset is None:
        raise RecordError(f"{what} must be timezone-aware")
    # Every time zone's offset is whole seconds; a finer one does not survive ISO text
    # (Python 3.11's fromisoformat drops its microseconds), so no store could keep it.
    if offset.microseconds:
        raise RecordError(f"{what}: UTC offset {offset} is not whole seconds")
    moment(value, what)


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


# Sampler figures that are >= 0 (temperature_c may be below zero, but is finite).
_NON_NEGATIVE = (
    "gpu_util_pct",
    "gpu_mem_mib",
    "power_w",
    "sm_clock_mhz",
    "cpu_util_pct",
    "rss_mib",
)
_BIG = 1.7976931348623157e308  # the largest float: `0 <= v <= _BIG` is false for NaN and inf


def check_samples(samples: Iterable[DeviceSample]) -> None:
    """Refuse a sample with a time outside the sane range, a gpu_index PostgreSQL's
    smallint cannot hold or below 0, a negative or non-finite figure. Hundreds of
    thousands of these pass here per run: a fast test first, the precise one (and its
    message) only for a sample that fails it."""
    batch = samples if isinstance(samples, list | tuple) else list(samples)
    try:
        bad = _first_suspect(batch)
    except (TypeError, AttributeError):  # a value of the wrong type: named below
        bad = 0
    for s in batch[bad:] if bad is not None else ():
        _check_sample(s)


def _first_suspect(samples: Sequence[DeviceSample]) -> int | None:
    """The index of the first sample that may break a rule (None: none does). Inline
    comparisons, no call per value: NaN fails every comparison, inf fails `<= _BIG`."""
    early, late, big, int2, int8 = EARLIEST, LATEST, _BIG, INT2[1], INT8[1]
    for i, (t, gi, gu, gm, pw, sm, tc, tr, cu, rs) in enumerate(samples):
        offset = t.utcoffset()
        if not (
            offset is not None
            and not offset.microseconds
            and early <= t < late
            and (gi is None or (type(gi) is int and 0 <= gi <= int2))
            and (tr is None or (type(tr) is int and 0 <= tr <= int8))
            and (tc is None or -big <= tc <= big)
            and (gu is None or 0.0 <= gu <= big)
            and (gm is None or 0.0 <= gm <= big)
            and (pw is None or 0.0 <= pw <= big)
            and (sm is None or 0.0 <= sm <= big)
            and (cu is None or 0.0 <= cu <= big)
            and (rs is None or 0.0 <= rs <= big)
        ):
            return i
    return None


def _check_sample(s: DeviceSample) -> None:
    if not isinstance(s.time, datetime):
        raise RecordError("device sample time is not a datetime")
    aware(s.time, "device sample time")
    integer(s.gpu_index, "device sample gpu_index", (0, INT2[1]))
    integer(s.throttle_reasons, "device sample throttle_reasons", (0, INT8[1]))
    finite(s.temperature_c, "device sample temperature_c")
    for name in _NON_NEGATIVE:
        non_negative(getattr(s, name), f"device sample {name}")
