"""What counts as a measurement (model/checks.py), enforced where records are made, and
the integer ranges held to the PostgreSQL columns that store them."""

from __future__ import annotations

import dataclasses
import math
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import BigInteger, Integer, SmallInteger

from commitbench.model import checks
from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import (
    DeviceSample,
    MachineInfo,
    RecordError,
    ResultRecord,
    RunData,
    RunEnd,
    RunInfo,
)
from commitbench.store import tables
from tests import factories as f

CASE = CaseKey.of("m.f")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("stat", ["mean", "median", "stddev", "min", "max", "ci_low", "ci_high"])
def test_a_statistic_that_is_not_finite_is_refused(stat: str, bad: float) -> None:
    with pytest.raises(RecordError, match=rf"^metric t: {stat} is {bad}, not a measurement$"):
        MetricRecord("t", "s", "lower", 0, **{stat: bad})  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_sample_that_is_not_finite_is_refused_before_any_statistic(bad: float) -> None:
    message = rf"^metric t: sample 2 is {bad}, not a measurement$"
    with pytest.raises(RecordError, match=message):
        MetricRecord.from_samples("t", [1.0, bad, 3.0], unit="s")
    with pytest.raises(RecordError, match=message):
        MetricRecord("t", "s", "lower", 3, samples=(1.0, bad, 3.0))


def test_n_and_properties_must_fit_their_columns() -> None:
    with pytest.raises(RecordError, match=r"^metric t: n 2147483648 is out of range"):
        MetricRecord("t", "s", "lower", 2**31)
    with pytest.raises(RecordError, match=r"^metric t: properties is nan, not a measurement$"):
        MetricRecord("t", "s", "lower", 0, properties={"a": [1, {"b": math.nan}]})
    with pytest.raises(RecordError, match=r"^metric t: unit holds U\+0000"):
        MetricRecord("t", "s\x00", "lower", 0)


@pytest.mark.parametrize("bad", [-0.001, math.nan, math.inf])
def test_a_duration_must_be_a_finite_number_at_least_zero(bad: float) -> None:
    with pytest.raises(RecordError, match=r"^m\.f: duration_s is "):
        ResultRecord(CASE, "ok", duration_s=bad)
    assert ResultRecord(CASE, "ok", duration_s=0.0).duration_s == 0.0


def test_an_error_keeps_what_no_store_can_hold_as_escapes() -> None:
    assert ResultRecord(CASE, "failed", "a\x00b").error == "a\\x00b"


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("cpu_util_pct", -0.5, "cpu_util_pct is negative (-0.5)"),
        ("rss_mib", -1.0, "rss_mib is negative (-1.0)"),
        ("power_w", math.nan, "power_w is nan, not a measurement"),
        ("gpu_util_pct", math.inf, "gpu_util_pct is inf, not a measurement"),
        ("temperature_c", -math.inf, "temperature_c is -inf, not a measurement"),
        ("gpu_index", 40000, "gpu_index 40000 is out of range (0..32767)"),
        ("gpu_index", -1, "gpu_index -1 is out of range (0..32767)"),
        ("throttle_reasons", 2**63, "throttle_reasons 9223372036854775808 is out of range"),
        ("gpu_index", 1.0, "gpu_index is not an integer (float)"),
    ],
)
def test_a_device_sample_that_is_not_a_measurement_is_refused(
    field: str, bad: object, message: str
) -> None:
    sample = DeviceSample(f.T0)._replace(**{field: bad})
    with pytest.raises(RecordError, match=f"^device sample {re.escape(message)}"):
        ResultRecord(CASE, "ok", device_samples=(sample,))
    assert DeviceSample(f.T0, temperature_c=-5.0).temperature_c == -5.0  # it can freeze


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),  # a BC date in UTC
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
        datetime(2200, 1, 1, tzinfo=timezone.utc),
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14))),
    ],
)
def test_a_time_outside_1970_to_2199_is_refused_everywhere(when: datetime) -> None:
    message = re.escape(f"started_at {when.isoformat()} is outside 1970..2199") + "$"
    with pytest.raises(RecordError, match=message):
        RunInfo(uuid.uuid4(), when)
    with pytest.raises(RecordError, match=message):
        ResultRecord(CASE, "ok", started_at=when)
    with pytest.raises(RecordError, match="device sample time"):
        ResultRecord(CASE, "ok", device_samples=(DeviceSample(when),))
    with pytest.raises(RecordError, match="finished_at"):
        RunEnd(when, "ok")
    with pytest.raises(RecordError, match="committed_at"):
        dataclasses.replace(f.commit(), committed_at=when)


def test_the_edges_of_the_range_are_kept() -> None:
    RunInfo(uuid.uuid4(), datetime(1970, 1, 1, tzinfo=timezone.utc))
    RunInfo(uuid.uuid4(), datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc))


def test_a_run_ends_after_it_starts_and_names_a_case_once_per_unit() -> None:
    header = f.header()
    with pytest.raises(RecordError, match=r"^finished_at .* is before started_at "):
        RunData(header, (), RunEnd(f.T0 - timedelta(seconds=1), "ok"))
    RunData(header, (), RunEnd(f.T0, "ok"))  # the same instant is fine
    twice = (f.result(i=0), f.result(i=0))
    with pytest.raises(RecordError, match=r"is listed twice in one unit$"):
        RunData(header, (twice,), None)


def test_machine_counts_fit_their_columns() -> None:
    with pytest.raises(RecordError, match=r"^cpu_count 2147483648 is out of range"):
        MachineInfo("0" * 64, cpu_count=2**31)
    with pytest.raises(RecordError, match=r"^gpu_count is not an integer \(bool\)$"):
        MachineInfo("0" * 64, gpu_count=True)


# Each checked integer and the range it is checked against, beside its column: a column
# whose type changes fails here until the check changes with it.
RANGES = {
    (tables.Metric.__table__.c.n, checks.INT4),
    (tables.device_samples.c.gpu_index, checks.INT2),
    (tables.device_samples.c.throttle_reasons, checks.INT8),
    (tables.Machine.__table__.c.gpu_count, checks.INT4),
    (tables.Machine.__table__.c.cpu_count, checks.INT4),
    (tables.Machine.__table__.c.gpu_memory_mib, checks.INT8),
    (tables.Machine.__table__.c.ram_mib, checks.INT8),
}
TYPES = {SmallInteger: checks.INT2, Integer: checks.INT4, BigInteger: checks.INT8}


@pytest.mark.parametrize(("column", "bounds"), sorted(RANGES, key=lambda r: str(r[0])))
def test_each_checked_integer_has_the_range_of_its_column(
    column: object, bounds: tuple[int, int]
) -> None:
    assert TYPES[type(column.type)] == bounds  # type: ignore[attr-defined]
