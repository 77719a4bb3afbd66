"""model/sweep.py: `--param` syntax, typing by the declared values, the swept grid."""

from __future__ import annotations

import pytest

from commitbench.model import sweep


def test_parse_keeps_names_in_order_and_values_as_typed() -> None:
    assert sweep.parse(["batch=1,4", "seq = 512, 2048", "impl=a b"]) == (
        ("batch", ("1", "4")),
        ("seq", ("512", "2048")),
        ("impl", ("a b",)),
    )
    assert sweep.parse([]) == ()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("batch", "--param 'batch': expected NAME=V1,V2,... (e.g. --param batch=1,4)"),
        ("=1", "--param '=1': expected NAME=V1,V2,... (e.g. --param batch=1,4)"),
        ("batch=", "--param 'batch=': no values; expected NAME=V1,V2,... (e.g. --param batch=1,4)"),
        (
            "b=1,",
            "--param 'b=1,': an empty value; expected NAME=V1,V2,... (e.g. --param batch=1,4)",
        ),
        ("1x=1", "--param '1x=1': '1x' is not a parameter name"),
    ],
)
def test_malformed_syntax_is_one_line(item: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        sweep.parse([item])
    assert str(err.value) == message


def test_a_name_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^--param b given twice: list its values once$"):
        sweep.parse(["b=1", "c=2", "b=3"])


@pytest.mark.parametrize(
    ("declared", "kind"),
    [
        ([1, 4], "int"),
        ([0.5, 1], "float"),
        ([1.5], "float"),
        ([True, False], "bool"),
        ([True, 1], "str"),  # a bool is no number here
        (["a", 1], "str"),
        ([None, 1], "str"),
        (["x"], "str"),
    ],
)
def test_the_kind_comes_from_every_declared_value(declared: list[object], kind: str) -> None:
    assert sweep.kind(declared) == kind


def test_typed_values_and_repeats() -> None:
    assert sweep.typed("m.f", "n", [1], ["+3", "-2", "03", "3"]) == (3, -2)
    got = sweep.typed("m.f", "p", [0.5, 1], ["2", "1e-3", ".5", "0.50"])
    assert got == (2.0, 0.001, 0.5) and all(type(v) is float for v in got)
    assert sweep.typed("m.f", "on", [True], ["TRUE", "false", "True"]) == (True, False)
    assert sweep.typed("m.f", "s", ["a"], ["1", "true", "1"]) == ("1", "true")


@pytest.mark.parametrize(
    ("declared", "value", "message"),
    [
        ([1, 4], "1.0", "--param n: '1.0' is not an int, as m.f declares n (1, 4)"),
        ([1, 4], "1_000", "--param n: '1_000' is not an int, as m.f declares n (1, 4)"),
        ([0.5], "inf", "--param n: 'inf' is not a float, as m.f declares n (0.5)"),
        ([0.5], "1e999", "--param n: '1e999' is not a float, as m.f declares n (0.5)"),
        ([True, False], "1", "--param n: '1' is not a bool, as m.f declares n (true, false)"),
    ],
)
def test_a_value_of_another_type_names_bench_parameter_and_value(
    declared: list[object],
    value: str,
    message: str,
) -> None:
    with pytest.raises(ValueError) as err:
        sweep.typed("m.f", "n", declared, [value])
    assert str(err.value) == message


def test_swept_replaces_only_the_declared_parameters() -> None:
    grid = (("n", (1, 2)), ("impl", ("a", "b")))
    overrides = (("impl", ("c",)), ("other", ("9",)))
    assert sweep.swept("m.f", grid, overrides) == (("n", (1, 2)), ("impl", ("c",)))
    assert sweep.swept("m.f", grid, ()) == grid


def test_json_round_trip_and_bad_json() -> None:
    overrides = (("b", ("1", "4")), ("a", ("x",)))
    assert sweep.from_json(sweep.to_json(overrides)) == overrides
    assert sweep.from_json(None) == ()
    for bad in ({"b": []}, {"b": [1]}, {"a-b": ["1"]}, {"b": "1"}):
        with pytest.raises(ValueError):
            sweep.from_json(bad)


def test_unknown_names_the_first_undeclared_one() -> None:
    overrides = (("n", ("1",)), ("x", ("2",)), ("y", ("3",)))
    assert sweep.unknown(overrides, {"n", "x", "y"}) is None
    assert sweep.unknown(overrides, {"n", "impl"}) == (
        "--param x: no selected bench declares a parameter 'x' (declared: impl, n)"
    )
