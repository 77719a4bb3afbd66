"""Bisection decisions on exact series."""

from __future__ import annotations

import pytest

from commitbench.analysis.bisect import Probe, bisect, search, side, steps_needed


def test_side_uses_log_distance() -> None:
    assert side(1.04, good=1.0, bad=1.10) == "good"
    assert side(1.06, good=1.0, bad=1.10) == "bad"
    assert side(0.95, good=1.0, bad=0.90) == "good"  # an improvement step
    with pytest.raises(ValueError, match="positive"):
        side(0.0, 1.0, 1.1)


@pytest.mark.parametrize("culprit", range(17))
def test_finds_every_position_in_at_most_log2_probes(culprit: int) -> None:
    values = [1.0 if i < culprit else 1.1 for i in range(17)]
    values[-1] = 1.1  # the last candidate is BAD itself
    measured: list[int] = []

    def measure(i: int) -> float:
        measured.append(i)
        return values[i]

    found, probes = bisect(17, 1.0, 1.1, measure)
    assert found == min(culprit, 16)
    assert len(probes) <= steps_needed(17) == 5
    assert len(set(measured)) == len(measured)  # nothing measured twice


def test_single_candidate_needs_no_probe() -> None:
    assert bisect(1, 1.0, 1.1, lambda i: pytest.fail("no probe expected")) == (0, [])


def test_search_stops_at_a_probe_it_cannot_place() -> None:
    sides = ["good", "good", "outside", "bad", "bad"]
    found, probes = search(5, lambda i: Probe(i, 1.0, sides[i]))
    assert found is None
    assert [(p.index, p.side) for p in probes] == [(1, "good"), (2, "outside")]


def test_search_names_the_first_bad_index_when_every_probe_is_placed() -> None:
    sides = ["good", "good", "bad", "bad", "bad"]
    found, probes = search(5, lambda i: Probe(i, 1.0, sides[i]))
    assert (found, [p.index for p in probes]) == (2, [1, 2])
