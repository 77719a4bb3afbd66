"""One rule chooses cases by a pattern everywhere: a glob with a wildcard, else a substring."""

from __future__ import annotations

from commitbench.analysis.compare import Policies
from commitbench.model.cases import case_matches, exact_pattern

LABELS = ["matmul.matmul[impl=fp16,n=4]", "matmul.matmul[impl=int8,n=4]", "attention.sdpa[d=16]"]


def chosen(pattern: str | None) -> list[str]:
    return [label for label in LABELS if case_matches(label, pattern)]


def test_the_rule() -> None:
    assert chosen(None) == LABELS
    assert chosen("int8") == [LABELS[1]]  # a substring
    assert chosen("matmul") == LABELS[:2]
    assert chosen("matmul.*") == LABELS[:2]  # a glob: the whole id
    assert chosen("*n=4]") == LABELS[:2]
    assert chosen("n=4]*") == []  # a glob must match from the start
    assert chosen("attention.sdpa[d=1?]") == []  # `[d=1?]` is a character class
    assert chosen("attention.sdpa[[]d=16]") == [LABELS[2]]
    assert chosen("MATMUL") == []  # case-sensitive


def test_thresholds_choose_cases_by_the_same_rule() -> None:
    policies = Policies.parse("median:5%", {"matmul.*": "median:3%", "int8": "median:10%"})
    assert [str(policies.for_case(label)) for label in LABELS] == [
        "median:3%",
        "median:10%",  # the last match wins
        "median:5%",
    ]


def test_an_exact_pattern_chooses_its_case_alone() -> None:
    labels = [*LABELS, "tiny.step", "tiny.steps", "odd.case[glob=a*b?,set=[x]]"]
    for label in labels:
        assert [x for x in labels if case_matches(x, exact_pattern(label))] == [label]
    assert exact_pattern("attention.sdpa[d=16]") == "attention.sdpa[[]d=16]"
    assert exact_pattern("tiny.step") == "[t]iny.step"
