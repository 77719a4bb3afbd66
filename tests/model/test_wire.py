"""The worker's wire protocol (model.wire), property-tested: every representable record
crosses the pipe unchanged, bit for bit, and whatever cannot cross is refused with the
protocol's own errors (RecordError on decoding, ValueError on encoding), never anything
else, so the runner always knows which case broke."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commitbench.model import wire
from commitbench.model.records import RecordError, ResultRecord, Window
from tests.strategies import bits, cases, finite, json_objects, metrics, results, text

# What the wire carries: device samples are the runner's, not the worker's; floats are
# finite (JSON has no NaN or infinity).
wire_results = results(with_samples=False)


def cross(event: str, **fields: object) -> dict[str, object]:
    """Encode as the worker does and decode as the runner does."""
    line = wire.encode(event, **fields)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one event, one line
    assert line.isascii()
    return wire.decode(line)


@given(wire_results)
def test_a_result_crosses_the_wire_bit_for_bit(result: ResultRecord) -> None:
    event = cross("result", result=wire.result_to_json(result), windows=[])
    back = wire.result_from_json(event["result"])  # type: ignore[arg-type]
    assert back == result
    assert bits(back) == bits(result)


@given(metrics(value=finite))
def test_a_metric_crosses_the_wire_bit_for_bit(metric: object) -> None:
    event = cross("metric", metric=wire.metric_to_json(metric))  # type: ignore[arg-type]
    back = wire.metric_from_json(event["metric"])  # type: ignore[arg-type]
    assert bits(back) == bits(metric)


@given(st.lists(cases, max_size=5))
def test_a_plan_and_its_cases_cross_the_wire(plan: list[object]) -> None:
    event = cross("plan", cases=[wire.case_to_json(c) for c in plan])  # type: ignore[arg-type]
    back = [wire.case_from_json(c) for c in event["cases"]]  # type: ignore[attr-defined]
    assert back == plan
    assert [c.label for c in back] == [c.label for c in plan]  # type: ignore[attr-defined]
    assert bits(back) == bits(plan)


@given(st.lists(st.tuples(finite, finite, st.integers(0, 2**53)), max_size=4))
def test_windows_cross_the_wire(spans: list[tuple[float, float, int]]) -> None:
    windows = [Window(*s) for s in spans]
    event = cross("result", windows=[list(w) for w in windows])
    assert bits(list(wire.windows_from_json(event["windows"]))) == bits(windows)  # type: ignore[arg-type]


@given(st.text(min_size=1), json_objects.filter(lambda d: not {"event", "v"} & d.keys()))
def test_any_event_with_json_fields_round_trips(event: str, fields: dict[str, object]) -> None:
    assert cross(event, **fields) == {"event": event, "v": wire.WIRE_VERSION, **fields}


@given(wire_results, st.sampled_from([math.nan, math.inf, -math.inf]))
def test_a_value_json_cannot_carry_is_refused_on_encoding(result: ResultRecord, bad: float) -> None:
    """The worker turns this ValueError into a failed result naming the case."""
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        wire.encode("result", result=wire.result_to_json(result), extra=[bad])


def test_the_version_and_event_cannot_be_overridden_by_a_field() -> None:
    with pytest.raises(ValueError, match="'v' is the protocol's"):
        wire.encode("result", v=2)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_any_bytes_decode_to_an_event_or_a_record_error(line: bytes) -> None:
    try:
        event = wire.decode(line)
    except RecordError as err:
        assert str(err).startswith("worker sent ")
    else:
        assert event["v"] == wire.WIRE_VERSION and isinstance(event["event"], str)


@given(
    json_objects
    | st.lists(st.integers())
    | st.none()
    | st.fixed_dictionaries({"event": st.integers() | st.none(), "v": st.just(1)})
    | st.fixed_dictionaries({"event": text, "v": st.integers().filter(lambda v: v != 1)})
)
def test_json_that_is_not_an_event_is_refused(data: object) -> None:
    line = json.dumps(data).encode()
    with pytest.raises(RecordError, match="worker sent an unknown message"):
        wire.decode(line)


def test_deeply_nested_json_is_refused_like_any_bad_line() -> None:
    with pytest.raises(RecordError, match="worker sent a line that is not JSON"):
        wire.decode(b"[" * 100_000 + b"]" * 100_000)


@given(wire_results, st.sampled_from(["status", "direction", "n", "case"]))
def test_a_decoded_result_that_breaks_a_rule_is_a_record_error(
    result: ResultRecord, broken: str
) -> None:
    """The runner records such a result as failed, naming the case (launcher)."""
    data = wire.result_to_json(result)
    if broken == "status":
        data["status"] = "fine"
    elif broken == "case":
        data["case"]["name"] = "not a name"
    elif data["metrics"]:
        data["metrics"][0][broken] = "sideways" if broken == "direction" else -1
    else:
        data["status"] = "done"
    with pytest.raises(RecordError):
        wire.result_from_json(data)
