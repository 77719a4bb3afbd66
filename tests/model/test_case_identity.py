"""Case identity (cases.CaseKey, case_label), property-tested.

The label is what the stores key a case by (cases.label, the CSV's case_label, the
runner's "already recorded" check), so it must be a function of the parameters alone
(key order irrelevant), stable (the same text on every commit and every Python), and
injective: two parameter mappings that differ, by a key, a value or a value's JSON type
(the string "1", the integer 1, the float 1.0, true, null), never share a label. CaseKey
equality is the same relation.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commitbench.model.cases import CaseKey, ParamValue, case_label
from commitbench.model.records import RecordError
from tests.strategies import dotted, identifier, param_values, params


def typed(value: ParamValue) -> tuple[str, str]:
    """A value as JSON keeps it: its type and text (1, 1.0 and true differ; 1 == True)."""
    return type(value).__name__, json.dumps(value)


def same(a: dict[str, ParamValue], b: dict[str, ParamValue]) -> bool:
    return {k: typed(v) for k, v in a.items()} == {k: typed(v) for k, v in b.items()}


@given(dotted, params, st.randoms(use_true_random=False))
def test_key_order_does_not_matter(
    name: str, values: dict[str, ParamValue], rng: random.Random
) -> None:
    shuffled = list(values.items())
    rng.shuffle(shuffled)
    other = dict(shuffled)
    assert case_label(name, other) == case_label(name, values)
    assert CaseKey.of(name, other) == CaseKey.of(name, values)
    assert hash(CaseKey.of(name, other)) == hash(CaseKey.of(name, values))


# A small world of keys and values made of the label's own punctuation and of near
# twins (1, 1.0, true, "1"), where distinct mappings often print alike if anything can.
tight_params = st.dictionaries(
    st.sampled_from(["a", "b", "a1"]),
    st.text(alphabet='ab1,="[] ', max_size=5)
    | st.sampled_from([0, 1, 1.0, 0.0, -0.0, True, False, None, 10, 1e16]),
    max_size=3,
)


def read_label(label: str) -> tuple[str, dict[str, tuple[str, str]]]:
    """The name and typed parameters a label was made from, by the grammar its docstring
    gives. A label read back this way is injective: it determines its mapping."""
    name, bracket, rest = label.partition("[")
    if not bracket:
        return name, {}
    assert rest.endswith("]")
    body, at, found = rest[:-1], 0, {}
    while True:
        equals = body.index("=", at)
        key, at = body[at:equals], equals + 1
        value: ParamValue
        if body.startswith('"', at):
            value, at = json.JSONDecoder().raw_decode(body, at)
        else:
            end = body.find(",", at)
            end = len(body) if end < 0 else end
            try:
                value = json.loads(body[at:end])
            except ValueError:
                value = body[at:end]
            at = end
        assert key not in found
        found[key] = typed(value)
        if at == len(body):
            return name, found
        assert body[at] == ","
        at += 1


# A small world of keys and values made of the label's own punctuation and of near
# twins (1, 1.0, true, "1"), where distinct mappings print alike if anything can.
tight_params = st.dictionaries(
    st.sampled_from(["a", "b", "a1"]),
    st.text(alphabet='ab1,="[] ', max_size=5)
    | st.sampled_from([0, 1, 1.0, 0.0, -0.0, True, False, None, 10, 1e16, "1", "true"]),
    max_size=3,
)


@given(dotted, params | tight_params)
def test_the_label_reads_back_as_its_mapping(name: str, values: dict[str, ParamValue]) -> None:
    assert read_label(case_label(name, values)) == (name, {k: typed(v) for k, v in values.items()})


@given(dotted | st.just("m.f"), tight_params, dotted | st.just("m.f"), tight_params)
def test_two_mappings_share_a_label_only_when_they_are_the_same(
    name_a: str, a: dict[str, ParamValue], name_b: str, b: dict[str, ParamValue]
) -> None:
    assert (case_label(name_a, a) == case_label(name_b, b)) == (name_a == name_b and same(a, b))


@given(dotted, params, st.data())
def test_labels_differ_when_one_value_differs(
    name: str, values: dict[str, ParamValue], data: st.DataObject
) -> None:
    """The pairs a random draw rarely finds: one value changed to a near twin."""
    key = data.draw(identifier)
    a = data.draw(param_values)
    b = data.draw(
        st.sampled_from(
            [json.dumps(a), str(a), True, False, 1, 1.0, 0, 0.0, -0.0, None, "null"]
        ).filter(lambda v: not same({key: v}, {key: a}))
    )
    left, right = {**values, key: a}, {**values, key: b}
    assert case_label(name, left) != case_label(name, right)
    assert CaseKey.of(name, left) != CaseKey.of(name, right)


@given(dotted, params | tight_params, params | tight_params)
def test_casekey_equality_is_label_equality(
    name: str, a: dict[str, ParamValue], b: dict[str, ParamValue]
) -> None:
    ka, kb = CaseKey.of(name, a), CaseKey.of(name, b)
    assert (ka == kb) == (ka.label == kb.label) == same(a, b)
    if ka == kb:
        assert hash(ka) == hash(kb)


@given(dotted, params)
def test_the_label_survives_json_and_the_key_rebuilt_from_it(
    name: str, values: dict[str, ParamValue]
) -> None:
    """What the wire, the CSV store and the database do: params to JSON and back."""
    key = CaseKey.of(name, values)
    back = CaseKey.of(name, json.loads(json.dumps(key.params_dict)))
    assert back == key and back.label == key.label


def reads_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@given(
    st.text()
    | st.from_regex(
        r"[ \t\r\n]*-?[0-9]{1,4}(\.[0-9]+)?([eE][-+]?[0-9]+)?[ \t\r\n]*", fullmatch=True
    )
    | st.sampled_from(["true", " null", "NaN", "-Infinity", "{}", " { } ", "{1}", "01", "1."])
)
def test_a_string_is_quoted_exactly_when_it_could_be_read_as_something_else(value: str) -> None:
    quoted = case_label("m.f", {"s": value}) != f"m.f[s={value}]"
    assert quoted == (value == "" or bool(set(',=[]"') & set(value)) or reads_as_json(value))


def test_labels_are_stable() -> None:
    """The text of labels is a public contract (Grafana, stored cases): these must not
    change. Plain strings stay bare; only a string that would read as another value or
    as the label's own punctuation is quoted."""
    assert case_label("m.f", {}) == "m.f"
    assert case_label("m.f", {"shape": "4k", "impl": "fp16"}) == "m.f[impl=fp16,shape=4k]"
    assert case_label("m.f", {"n": 8192, "p": 0.5, "on": True, "x": None}) == (
        "m.f[n=8192,on=true,p=0.5,x=null]"
    )
    assert case_label("m.f", {"shape": "12288x49152", "dtype": "bf16"}) == (
        "m.f[dtype=bf16,shape=12288x49152]"
    )
    assert case_label("m.f", {"n": "1"}) == 'm.f[n="1"]'
    assert case_label("m.f", {"on": "true"}) == 'm.f[on="true"]'
    assert case_label("m.f", {"a": "1,b=2"}) == 'm.f[a="1,b=2"]'
    assert case_label("m.f", {"a": ""}) == 'm.f[a=""]'


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("1module", {}),
        ("m.f[x=1]", {}),
        ("m.f\n", {}),
        ("m.f", {"a=b": 1}),
        ("m.f", {"a,b": 1}),
        ("m.f", {"": 1}),
        ("m.f", {"k\n": 1}),
        ("m.f", {"x": float("nan")}),
        ("m.f", {"x": [1]}),
    ],
)
def test_what_cannot_be_a_case_is_refused(name: str, values: dict[str, object]) -> None:
    with pytest.raises(RecordError):
        CaseKey.of(name, values)  # type: ignore[arg-type]
