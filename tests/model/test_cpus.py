"""CPU lists (model/cpus.py): what --affinity takes, and the line that refuses a bad one."""

from __future__ import annotations

import pytest

from commitbench.model import cpus


def test_a_cpu_list_reads_as_linux_writes_it_and_back() -> None:
    assert cpus.parse("0-3,8,10-11") == frozenset({0, 1, 2, 3, 8, 10, 11})
    assert cpus.parse(" 5 ") == frozenset({5})
    assert cpus.parse("2,1,1-2") == frozenset({1, 2})
    assert cpus.as_text({11, 0, 1, 2, 3, 8, 10}) == "0-3,8,10-11"
    assert cpus.as_text([4]) == "4"
    assert cpus.as_text([1, 3, 5]) == "1,3,5"
    assert cpus.as_text([]) == ""


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("", "'' is not a CPU list (like 0-3,8)"),
        ("1,,2", "'1,,2' is not a CPU list (like 0-3,8)"),
        ("3-1", "'3-1' in '3-1': the range ends before it starts"),
        ("a", "'a' in 'a' is not a CPU or a range of CPUs"),
        ("-1", "'-1' in '-1' is not a CPU or a range of CPUs"),
        ("1-", "'1-' in '1-' is not a CPU or a range of CPUs"),
        ("99999", "'99999' in '99999' is not a CPU or a range of CPUs"),
        ("\u0661", "'\u0661' in '\u0661' is not a CPU or a range of CPUs"),  # a digit, not ASCII
    ],
)
def test_anything_else_is_refused_naming_the_bad_part(text: str, line: str) -> None:
    with pytest.raises(ValueError) as err:
        cpus.parse(text)
    assert str(err.value) == line


def test_cpus_outside_the_allowed_set_are_named() -> None:
    assert cpus.outside(frozenset({0, 1}), frozenset({0, 1, 2})) is None
    assert cpus.outside(frozenset({1, 5, 6}), frozenset({0, 1, 2})) == (
        "--affinity 1,5-6: CPU 5-6 is not one this process may run on (0-2)"
    )
