"""Hypothesis strategies for every value a run is made of (commitbench.model.records).

Each strategy draws only values the records accept, over their whole range: any text
(newlines, quotes, commas, NUL, non-ASCII), floats from subnormal to infinite and -0.0,
timestamps in any fixed UTC offset down to the microsecond, JSON documents of any shape.
`bits` turns a value into plain data in which floats are compared by their bits.
"""

from __future__ import annotations

import dataclasses
import struct
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from commitbench.model.records import (
    DIRECTIONS,
    PROFILES,
    RESULT_STATUSES,
    RUN_STATUSES,
    TRIGGERS,
    CaseKey,
    CommitInfo,
    DeviceSample,
    MachineInfo,
    MetricRecord,
    ResultRecord,
    RunData,
    RunEnd,
    RunHeader,
    RunInfo,
)

# -- scalars -------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
floats = st.floats(allow_nan=False)  # +-inf included: the stores keep them
text = st.text()  # any code point but surrogates, which UTF-8 cannot carry
ints = st.integers()
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

# Whole seconds, as every time zone's offset (records refuse finer ones).
offsets = st.builds(
    timezone, st.integers(-(24 * 3600 - 1), 24 * 3600 - 1).map(lambda s: timedelta(seconds=s))
)
aware = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2999, 12, 31), timezones=offsets
)

identifier = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True)
dotted = st.builds(".".join, st.lists(identifier, min_size=1, max_size=3))
sha = st.from_regex(r"[0-9a-f]{40}([0-9a-f]{24})?", fullmatch=True)
fingerprint = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)

json_scalars = st.none() | st.booleans() | ints | finite | text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(text, json_values, max_size=4)

# -- records -------------------------------------------------------------------------

param_values = st.none() | st.booleans() | ints | finite | text
params = st.dictionaries(identifier, param_values, max_size=4)
cases = st.builds(CaseKey.of, dotted, params)


@st.composite
def metrics(draw: st.DrawFn, value: st.SearchStrategy[float] = floats) -> MetricRecord:
    samples = draw(st.none() | st.lists(value, max_size=6).map(tuple))
    n = len(samples) if samples is not None else draw(st.integers(0, 10**6))
    low = draw(st.none() | value)
    high = draw(st.none() | value)
    if low is not None and high is not None and low > high:
        low, high = high, low
    optional = st.none() | value
    return MetricRecord(
        name=draw(text.filter(bool)),
        unit=draw(text),
        direction=draw(st.sampled_from(DIRECTIONS)),
        n=n,
        mean=draw(optional),
        median=draw(optional),
        stddev=draw(st.none() | value.map(abs)),
        min=low,
        max=high,
        ci_low=draw(optional),
        ci_high=draw(optional),
        samples=samples,
        properties=draw(json_objects),
    )


device_samples = st.builds(
    DeviceSample,
    time=aware,
    gpu_index=st.none() | st.integers(0, 2**31 - 1),
    gpu_util_pct=st.none() | floats,
    gpu_mem_mib=st.none() | floats,
    power_w=st.none() | floats,
    sm_clock_mhz=st.none() | floats,
    temperature_c=st.none() | floats,
    throttle_reasons=st.none() | int64,
    cpu_util_pct=st.none() | floats,
    rss_mib=st.none() | floats,
)


@st.composite
def results(draw: st.DrawFn, finite_only: bool = False, with_samples: bool = True) -> ResultRecord:
    value = finite if finite_only else floats
    chosen = draw(st.lists(metrics(value), max_size=3, unique_by=lambda m: m.name))
    return ResultRecord(
        case=draw(cases),
        status=draw(st.sampled_from(RESULT_STATUSES)),
        error=draw(st.none() | text),
        duration_s=draw(st.none() | value.map(abs)),
        started_at=draw(st.none() | aware),
        metrics=tuple(chosen),
        device_samples=tuple(draw(st.lists(device_samples, max_size=3))) if with_samples else (),
    )


headers = st.builds(
    RunHeader,
    run=st.builds(
        RunInfo,
        id=st.uuids(),
        started_at=aware,
        trigger=st.sampled_from(TRIGGERS),
        profile=st.sampled_from(PROFILES),
        branch=st.none() | text,
        environment=json_objects,
    ),
    commit=st.builds(
        CommitInfo,
        repository=text.filter(bool),
        sha=sha,
        parents=st.lists(sha, max_size=2).map(tuple),
        author_name=st.none() | text,
        author_email=st.none() | text,
        authored_at=st.none() | aware,
        committed_at=st.none() | aware,
        subject=st.none() | text,
    ),
    machine=st.builds(
        MachineInfo,
        fingerprint=fingerprint,
        gpu_name=st.none() | text,
        gpu_count=st.integers(0, 64),
        gpu_memory_mib=st.none() | st.integers(0, 2**40),
        driver_version=st.none() | text,
        cuda_version=st.none() | text,
        cpu_model=st.none() | text,
        cpu_count=st.none() | st.integers(1, 4096),
        ram_mib=st.none() | st.integers(0, 2**40),
        info=json_objects,
    ),
)

ends = st.builds(
    RunEnd,
    finished_at=aware,
    status=st.sampled_from(RUN_STATUSES[1:]),
    device_samples=st.lists(device_samples, max_size=3).map(tuple),
)

# A recorded unit is never empty: the stores write nothing for an empty one.
runs = st.builds(
    RunData,
    header=headers,
    units=st.lists(st.lists(results(), min_size=1, max_size=3).map(tuple), max_size=3).map(tuple),
    end=st.none() | ends,
)


# -- comparing -----------------------------------------------------------------------


def bits(value: Any) -> Any:
    """`value` as plain data, floats as their IEEE bits and timestamps with their offset,
    so that equal results mean the same bits (`==` takes -0.0 for 0.0 and compares
    timestamps in different offsets by their instant)."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str | uuid.UUID):
        return (type(value).__name__, value)
    if isinstance(value, float):
        return ("float", struct.pack(">d", value))
    if isinstance(value, datetime):
        return ("datetime", value.isoformat())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple((f.name, bits(getattr(value, f.name))) for f in dataclasses.fields(value)),
        )
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple
        return (type(value).__name__, tuple(zip(value._fields, map(bits, value), strict=True)))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(bits(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, bits(v)) for k, v in value.items())))
    raise TypeError(f"bits: {type(value).__name__}")
