"""The CI gate's decisions (analysis.gate.check) over a lab of plain values.

`PlainLab` is a complete Lab: a fresh measurement of a commit gives the samples its code
gives *now*; what was recorded earlier (a stale run on a loaded machine) stays recorded
and is pooled by `recorded`, as the stores do. Every verdict below is exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timezone

import pytest

from commitbench.analysis import gate
from commitbench.analysis.compare import Policies
from commitbench.errors import CommitbenchError
from commitbench.model.points import Point

BASE, HEAD = "b" * 40, "h" * 40
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
MATMUL, SOFTMAX = "ops.matmul", "ops.softmax"


def level(ms: float) -> tuple[float, ...]:
    """15 samples around `ms` (+-0.7%): medians are `ms` exactly."""
    return tuple(ms + 0.05 * (k - 7) * ms / 100 for k in range(15))


class PlainLab:
    """measure(): one new run per call, of the samples the code gives now; recorded():
    every run recorded at the commits (pooled, as both stores read them back)."""

    def __init__(self, now: dict[str, dict[str, tuple[float, ...]]]) -> None:
        self.now = now
        self.runs: list[list[Point]] = []
        self.calls: list[tuple[str, frozenset[str] | None, bool]] = []

    def record(self, sha: str, case: str, samples: Sequence[float]) -> None:
        """A run recorded before the gate looks (e.g. HEAD measured by an earlier push)."""
        self.runs.append([self._point(sha, case, samples)])

    def measure(
        self, sha: str, *, cases: frozenset[str] | None = None, again: bool = False
    ) -> list[Point]:
        self.calls.append((sha, cases, again))
        done = {p.case for p in self.recorded([sha])}
        run = [
            self._point(sha, case, samples)
            for case, samples in sorted(self.now[sha].items())
            if (cases is None or case in cases) and (again or case not in done)
        ]
        if run:
            self.runs.append(run)
        return run

    def recorded(self, shas: Sequence[str], *, case: str | None = None) -> list[Point]:
        return [
            p
            for run in self.runs
            for p in run
            if p.sha in shas and (case is None or p.case == case)
        ]

    def _point(self, sha: str, case: str, samples: Sequence[float]) -> Point:
        return Point(
            repository="repo",
            sha=sha,
            committed_at=T0,
            subject=None,
            machine="f" * 64,
            machine_label="Test CPU",
            branch="main",
            profile="smoke",
            run_id=uuid.uuid4(),
            run_started_at=T0,
            n=len(samples),
            first_parent=None,
            case=case,
            metric="time",
            unit="ms",
            direction="lower",
            median=None,
            ci_low=None,
            ci_high=None,
            samples=tuple(samples),
        )


def verdicts(rows: Sequence[gate.Row]) -> list[tuple[str, str, float, int, int]]:
    return [(r.case, r.comparison.verdict, r.comparison.ratio, r.n_base, r.n_head) for r in rows]


def test_a_stale_slow_head_that_interleaving_does_not_confirm_passes() -> None:
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(50.0)}})
    lab.record(HEAD, MATMUL, level(60.0))  # measured earlier, under load: 20% slower
    result = gate.check(lab, BASE, HEAD, Policies(), rounds=2)

    # BASE was missing and is measured; HEAD's stale run is reused and looks 20% slower.
    assert verdicts(result.rows) == [(MATMUL, "regressed", 1.2, 15, 15)]
    assert result.suspects == result.rows
    # Interleaved rounds measure the same code at both commits: the fresh samples alone
    # are compared, and they are equal.
    assert verdicts(result.confirmation) == [(MATMUL, "unchanged", 1.0, 30, 30)]
    assert result.confirmation[0].comparison.p_value == 1.0
    assert result.confirmed == []
    assert result.exit_code == 0
    assert result.summary == "no confirmed regression (1 not confirmed)"
    suspect = frozenset({MATMUL})
    assert lab.calls == [
        (BASE, None, False),
        (HEAD, None, False),
        (BASE, suspect, True),  # A B A B: base and head alternate
        (HEAD, suspect, True),
        (BASE, suspect, True),
        (HEAD, suspect, True),
    ]


def test_a_regression_that_interleaving_confirms_fails_the_gate() -> None:
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(60.0)}})
    result = gate.check(lab, BASE, HEAD, Policies(), rounds=3)
    assert verdicts(result.rows) == [(MATMUL, "regressed", 1.2, 15, 15)]
    assert verdicts(result.confirmation) == [(MATMUL, "regressed", 1.2, 45, 45)]
    assert result.confirmed == result.confirmation
    assert (result.exit_code, result.summary) == (1, "1 regression confirmed")
    assert len(lab.calls) == 2 + 2 * 3


def test_only_the_suspects_are_measured_again() -> None:
    lab = PlainLab(
        {
            BASE: {MATMUL: level(50.0), SOFTMAX: level(8.0)},
            HEAD: {MATMUL: level(60.0), SOFTMAX: level(8.0)},
        }
    )
    result = gate.check(lab, BASE, HEAD, Policies(), rounds=1)
    assert verdicts(result.rows) == [
        (MATMUL, "regressed", 1.2, 15, 15),
        (SOFTMAX, "unchanged", 1.0, 15, 15),
    ]
    assert verdicts(result.confirmation) == [(MATMUL, "regressed", 1.2, 15, 15)]
    assert lab.calls[2:] == [(BASE, frozenset({MATMUL}), True), (HEAD, frozenset({MATMUL}), True)]


def test_without_a_suspect_nothing_is_measured_again() -> None:
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(40.0)}})
    lab.record(BASE, MATMUL, level(50.0))  # recorded work is reused, not measured again
    result = gate.check(lab, BASE, HEAD, Policies())
    assert verdicts(result.rows) == [(MATMUL, "improved", 0.8, 15, 15)]
    assert (result.suspects, result.confirmation) == ([], [])
    assert (result.exit_code, result.summary) == (0, "no regression")
    assert lab.calls == [(BASE, None, False), (HEAD, None, False)]
    assert len(lab.runs) == 2  # BASE's earlier run and HEAD's new one


def test_a_lenient_policy_turns_the_stale_step_into_no_suspect() -> None:
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(50.0)}})
    lab.record(HEAD, MATMUL, level(60.0))
    result = gate.check(lab, BASE, HEAD, Policies.parse(None, {"ops.*": "median:25%"}))
    assert verdicts(result.rows) == [(MATMUL, "unchanged", 1.2, 15, 15)]
    assert result.exit_code == 0 and len(lab.calls) == 2


def test_the_same_commit_twice_is_refused_before_measuring() -> None:
    lab = PlainLab({})
    with pytest.raises(CommitbenchError, match=f"BASE and HEAD are the same commit {HEAD[:12]}"):
        gate.check(lab, HEAD, HEAD, Policies())
    assert lab.calls == []
