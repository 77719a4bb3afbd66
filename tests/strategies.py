"""Hypothesis strategies for every value a run is made of (commitbench.model.records).

Each strategy draws only values the records accept, over their whole range: any text
PostgreSQL can hold (newlines, quotes, commas, non-ASCII; not NUL), finite floats from
subnormal to the largest and -0.0 (sampler figures >= 0), timestamps from 1971 to 2199 in
any fixed UTC offset down to the microsecond, JSON documents of any shape.
`bits` turns a value into plain data in which floats are compared by their bits.
"""

from __future__ import annotations

import dataclasses
import struct
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from commitbench.model.cases import CaseKey
from commitbench.model.metrics import DIRECTIONS, MetricRecord
from commitbench.model.records import (
    PROFILES,
    RESULT_STATUSES,
    RUN_STATUSES,
    TRIGGERS,
    CommitInfo,
    DeviceSample,
    MachineInfo,
    ResultRecord,
    RunData,
    RunEnd,
    RunHeader,
    RunInfo,
)

# -- scalars -------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
non_negative = st.floats(min_value=0.0, allow_infinity=False)
# Any code point but NUL and the surrogates, which PostgreSQL text cannot hold
# (model/checks.py; tests/store/test_import_hardening.py feeds them in).
text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
ints = st.integers()
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

# Whole seconds, as every time zone's offset (records refuse finer ones).
offsets = st.builds(
    timezone, st.integers(-(24 * 3600 - 1), 24 * 3600 - 1).map(lambda s: timedelta(seconds=s))
)
aware = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2199, 12, 1), timezones=offsets
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
def metrics(draw: st.DrawFn, value: st.SearchStrategy[float] = finite) -> MetricRecord:
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
    gpu_index=st.none() | st.integers(0, 2**15 - 1),
    gpu_util_pct=st.none() | non_negative,
    gpu_mem_mib=st.none() | non_negative,
    power_w=st.none() | non_negative,
    sm_clock_mhz=st.none() | non_negative,
    temperature_c=st.none() | finite,
    throttle_reasons=st.none() | st.integers(0, 2**63 - 1),
    cpu_util_pct=st.none() | non_negative,
    rss_mib=st.none() | non_negative,
)


@st.composite
def results(draw: st.DrawFn, with_samples: bool = True) -> ResultRecord:
    chosen = draw(st.lists(metrics(), max_size=3, unique_by=lambda m: m.name))
    return ResultRecord(
        case=draw(cases),
        status=draw(st.sampled_from(RESULT_STATUSES)),
        error=draw(st.none() | text),
        duration_s=draw(st.none() | non_negative),
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


@st.composite
def ends(draw: st.DrawFn, started_at: datetime) -> RunEnd:
    """A run's end, at or after its start (in any offset)."""
    after = draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)))
    return RunEnd(
        finished_at=(started_at + after).astimezone(draw(offsets)),
        status=draw(st.sampled_from(RUN_STATUSES[1:])),
        device_samples=tuple(draw(st.lists(device_samples, max_size=3))),
    )


@st.composite
def _runs(draw: st.DrawFn) -> RunData:
    """A recorded run: units never empty (the stores write nothing for an empty one), and
    no case twice in a unit."""
    header = draw(headers)
    unit = st.lists(results(), min_size=1, max_size=3, unique_by=lambda r: r.case.label)
    return RunData(
        header=header,
        units=tuple(draw(st.lists(unit.map(tuple), max_size=3))),
        end=draw(st.none() | ends(header.run.started_at)),
    )


runs = _runs()


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
