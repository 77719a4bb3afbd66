"""What is left of a selection, from what the store says (plain values, no processes)."""

from __future__ import annotations

from pathlib import Path

from commitbench.model.cases import CaseKey
from commitbench.model.records import ResultRecord
from commitbench.runner.launcher import CaseRun
from commitbench.runner.selection import Selection, folder_digest

A1, A2 = CaseKey.of("a.f", {"n": 1}), CaseKey.of("a.f", {"n": 2})
B1 = CaseKey.of("b.g")
PLANS = {"a": [A1, A2], "b": [B1]}
RECORDED = {"benches": "benches", "content": "tree1", "filter": None, "cases": None}


def test_nothing_left_when_the_cases_asked_for_are_recorded() -> None:
    asked = Selection("benches", cases=frozenset({A1.label}))
    assert asked.nothing_left({A1.label, B1.label}, RECORDED, [])
    assert not asked.nothing_left({B1.label}, RECORDED, [])


def test_nothing_left_when_a_complete_run_of_the_selection_exists() -> None:
    everything = Selection("benches")
    assert everything.nothing_left(set(), RECORDED, [RECORDED])
    other = {**RECORDED, "content": "tree2"}  # the bench directory changed
    assert not everything.nothing_left({A1.label}, RECORDED, [other])


def test_what_is_left_module_by_module() -> None:
    everything = Selection("benches")
    assert everything.left(["a", "b"], PLANS, {A1.label, B1.label}) == [("a", [A1.label, A2.label])]
    assert everything.left(["a", "b"], PLANS, {A1.label, A2.label, B1.label}) == []
    narrowed = Selection("benches", filter="n=2")
    assert narrowed.left(["a", "b"], PLANS, {A2.label}) == []
    assert narrowed.left(["a", "b"], PLANS, set()) == [("a", [A2.label])]


def test_a_module_not_listed_or_not_importing_is_left_unless_its_failure_is_recorded() -> None:
    broken = CaseRun(ResultRecord(CaseKey.of("b"), "failed", "ImportError"))
    plans = {"a": [A1], "b": broken}
    everything = Selection("benches")
    assert everything.left(["a", "b", "c"], plans, {A1.label}) == [("b", None), ("c", None)]
    assert everything.left(["a", "b"], plans, {A1.label, "b"}) == []


def test_listing_first_pays_only_with_something_to_subtract_or_choose() -> None:
    assert not Selection("benches").survey_needed(set())
    assert Selection("benches").survey_needed({A1.label})
    assert Selection("benches", filter="x").survey_needed(set())
    assert Selection("benches", cases=frozenset()).survey_needed(set())


def test_a_directory_outside_the_repository_is_known_by_its_sources(tmp_path: Path) -> None:
    (tmp_path / "bench_x.py").write_text("A = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "junk.py").write_text("ignored\n")
    first = folder_digest(tmp_path)
    (tmp_path / "notes.txt").write_text("not a source\n")
    assert folder_digest(tmp_path) == first
    (tmp_path / "bench_x.py").write_text("A = 2\n")
    assert folder_digest(tmp_path) != first
    assert len(first) == 64
