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

from commitbench.analysis import bisecting, gate
from commitbench.analysis.compare import Policies
from commitbench.errors import CommitbenchError
from commitbench.model.points import Point

BASE, HEAD = "b" * 40, "h" * 40
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
MATMUL, SOFTMAX = "ops.matmul", "ops.softmax"


def level(ms: float) -> tuple[float, ...]:
    """15 samples around `ms` (+-0.7%): medians are `ms` exactly."""
    return tuple(ms + 0.05 * (k - 7) * ms / 100 for k in range(15))


# Process j of a commit runs this much off its level: the spread between processes.
SPREAD = (1.0, 1.01, 1 / 1.01, 1.005, 1 / 1.005, 1.0)


class PlainLab:
    """measure(): one new run per call, of the samples the code gives now, in `processes`
    processes that differ by SPREAD; recorded(): every run recorded at the commits (as
    both stores read them back)."""

    def __init__(self, now: dict[str, dict[str, tuple[float, ...]]], metric: str = "time") -> None:
        self.now = now
        self.metric = metric
        self.runs: list[list[Point]] = []
        self.calls: list[tuple[str, frozenset[str] | None, bool]] = []
        self.started: dict[str, int] = {}  # processes started per commit

    def record(self, sha: str, case: str, samples: Sequence[float]) -> None:
        """A run recorded before the gate looks (e.g. HEAD measured by an earlier push)."""
        self.runs.append([self._point(sha, case, samples)])

    def measure(
        self,
        sha: str,
        *,
        cases: frozenset[str] | None = None,
        again: bool = False,
        processes: int = 1,
    ) -> list[Point]:
        self.calls.append((sha, cases, again))
        done = {p.case for p in self.recorded([sha])}
        wanted = [
            case
            for case in sorted(self.now[sha])
            if (cases is None or case in cases) and (again or case not in done)
        ]
        if not wanted:
            return []
        first = self.started.get(sha, 0)
        self.started[sha] = first + processes
        factors = [SPREAD[(first + k) % len(SPREAD)] for k in range(processes)]
        run = [
            self._point(
                sha,
                case,
                [x * f for f in factors for x in self.now[sha][case]],
                tuple(k for k in range(processes) for _ in self.now[sha][case]),
            )
            for case in wanted
        ]
        self.runs.append(run)
        return run

    def recorded(self, shas: Sequence[str], *, case: str | None = None) -> list[Point]:
        return [
            p
            for run in self.runs
            for p in run
            if p.sha in shas and (case is None or p.case == case)
        ]

    def _point(
        self,
        sha: str,
        case: str,
        samples: Sequence[float],
        processes: tuple[int, ...] | None = None,
    ) -> Point:
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
            metric=self.metric,
            unit="ms",
            direction="lower",
            median=None,
            ci_low=None,
            ci_high=None,
            samples=tuple(samples),
            processes=processes,
        )


def verdicts(rows: Sequence[gate.Row]) -> list[tuple[str, str, float, int, int]]:
    return [
        (
            r.case,
            r.comparison.verdict,
            round(r.comparison.ratio, 3),
            r.comparison.processes_base,
            r.comparison.processes_head,
        )
        for r in rows
    ]


def test_a_stale_slow_head_that_interleaving_does_not_confirm_passes() -> None:
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(50.0)}})
    lab.record(HEAD, MATMUL, level(60.0))  # measured earlier, under load: 20% slower
    result = gate.check(lab, BASE, HEAD, Policies(), rounds=3, processes=3)

    # BASE was missing and is measured in 3 processes; HEAD's stale run is reused (one
    # process) and looks 20% slower, beyond the 1% spread of BASE's processes.
    assert verdicts(result.rows) == [(MATMUL, "regressed", 1.2, 3, 1)]
    assert result.suspects == result.rows
    # Interleaved rounds measure the same code at both commits: the fresh processes
    # alone are compared, and they are equal within the minimum effect.
    assert verdicts(result.confirmation) == [(MATMUL, "unchanged", 1.0, 3, 3)]
    assert result.confirmed == []
    assert result.exit_code == 0
    assert result.summary == "no confirmed regression (1 not confirmed)"
    suspect = frozenset({MATMUL})
    assert lab.calls == [
        (BASE, None, False),
        (HEAD, None, False),  # nothing missing at HEAD: no later rounds for it
        (BASE, frozenset({MATMUL}), True),
        (BASE, frozenset({MATMUL}), True),
        (BASE, suspect, True),  # A B A B: base and head alternate, one process each
        (HEAD, suspect, True),
        (BASE, suspect, True),
        (HEAD, suspect, True),
        (BASE, suspect, True),
        (HEAD, suspect, True),
    ]


def test_a_regression_that_interleaving_confirms_fails_the_gate() -> None:
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(60.0)}})
    result = gate.check(lab, BASE, HEAD, Policies(), rounds=4, processes=3)
    assert verdicts(result.rows) == [(MATMUL, "regressed", 1.2, 3, 3)]
    assert verdicts(result.confirmation) == [(MATMUL, "regressed", 1.2, 4, 4)]
    assert result.confirmed == result.confirmation
    assert (result.exit_code, result.summary) == (1, "1 regression confirmed")
    assert len(lab.calls) == 2 * 3 + 2 * 4
    assert lab.calls[:2] == [(BASE, None, False), (HEAD, None, False)]  # then A B A B


def test_a_profile_metric_that_regressed_never_fails_the_gate() -> None:
    """profile.* (where the time went, from --trace) explains a change; a 20% step in it
    is shown as regressed but is no suspect: nothing is confirmed, the gate passes."""
    now = {BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(60.0)}}
    lab = PlainLab(now, metric="profile.time_per_iter")
    result = gate.check(lab, BASE, HEAD, Policies(), rounds=4, processes=3)
    assert verdicts(result.rows) == [(MATMUL, "regressed", 1.2, 3, 3)]
    assert (result.suspects, result.confirmation, result.exit_code) == ([], [], 0)
    assert len(lab.calls) == 2 * 3  # the interleaved rounds, no confirmation


@pytest.mark.parametrize("metric", ["cpu_util", "gpu_power", "energy", "rss"])
def test_a_sampled_summary_that_regressed_never_fails_the_gate(metric: str) -> None:
    """The sampler's summaries (model/sampled.py) describe a case; a 20% step in one is
    shown as regressed but is no suspect."""
    now = {BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(60.0)}}
    lab = PlainLab(now, metric=metric)
    result = gate.check(lab, BASE, HEAD, Policies(), rounds=4, processes=3)
    assert verdicts(result.rows) == [(MATMUL, "regressed", 1.2, 3, 3)]
    assert (result.suspects, result.confirmation, result.exit_code) == ([], [], 0)
    assert len(lab.calls) == 2 * 3


def test_an_ambiguous_sampled_summary_brings_no_more_processes() -> None:
    """A stale HEAD run makes the row ambiguous under a 25% minimum: for `time` check
    adds the processes that decide it (test below), for `cpu_util` none."""
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(50.0)}}, "cpu_util")
    lab.record(HEAD, MATMUL, level(60.0))
    result = gate.check(lab, BASE, HEAD, Policies.parse(None, {"ops.*": "median:25%"}))
    assert verdicts(result.rows) == [(MATMUL, "ambiguous", 1.2, 3, 1)]
    assert len(lab.calls) == 4  # the first pass alone; with `time`, 6 more calls follow


def test_energy_per_iteration_gates_only_with_an_interval_inside_the_policy() -> None:
    # Processes 1% apart: a 20% step's interval is far narrower than 5%: decisive.
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(60.0)}}, "energy_per_iter")
    result = gate.check(lab, BASE, HEAD, Policies(), rounds=3, processes=3)
    assert [r.metric for r in result.suspects] == ["energy_per_iter"]
    assert result.exit_code == 1
    # Under a 1% minimum the same interval (wider than 1%) may not decide.
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(60.0)}}, "energy_per_iter")
    strict = gate.check(lab, BASE, HEAD, Policies.parse("median:1%"), rounds=3, processes=3)
    row = strict.rows[0]
    assert row.comparison.verdict == "regressed"
    assert row.comparison.ci_high / row.comparison.ci_low - 1 > 0.01
    assert (strict.suspects, strict.exit_code) == ([], 0)


def test_one_process_per_side_is_never_a_suspect() -> None:
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(60.0)}})
    result = gate.check(lab, BASE, HEAD, Policies(), rounds=1, processes=1)
    assert verdicts(result.rows) == [(MATMUL, "ambiguous", 1.2, 1, 1)]
    assert (result.suspects, result.exit_code) == ([], 0)
    assert result.summary == "no regression (1 ambiguous)"


def test_only_the_suspects_are_measured_again() -> None:
    lab = PlainLab(
        {
            BASE: {MATMUL: level(50.0), SOFTMAX: level(8.0)},
            HEAD: {MATMUL: level(60.0), SOFTMAX: level(8.0)},
        }
    )
    result = gate.check(lab, BASE, HEAD, Policies(), rounds=3, processes=3)
    assert verdicts(result.rows) == [
        (MATMUL, "regressed", 1.2, 3, 3),
        (SOFTMAX, "unchanged", 1.0, 3, 3),
    ]
    assert verdicts(result.confirmation) == [(MATMUL, "regressed", 1.2, 3, 3)]
    assert (
        lab.calls[6:] == [(BASE, frozenset({MATMUL}), True), (HEAD, frozenset({MATMUL}), True)] * 3
    )


def test_without_a_suspect_nothing_is_measured_again() -> None:
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(40.0)}})
    lab.record(BASE, MATMUL, level(50.0))  # recorded work is reused, not measured again
    result = gate.check(lab, BASE, HEAD, Policies())
    assert verdicts(result.rows) == [(MATMUL, "improved", 0.8, 1, 3)]
    assert (result.suspects, result.confirmation) == ([], [])
    assert (result.exit_code, result.summary) == (0, "no regression")
    assert (
        lab.calls
        == [(BASE, None, False), (HEAD, None, False)] + [(HEAD, frozenset({MATMUL}), True)] * 2
    )
    assert len(lab.runs) == 4  # BASE's earlier run and HEAD's three processes


def test_a_lenient_policy_turns_the_stale_step_into_no_suspect() -> None:
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(50.0)}})
    lab.record(HEAD, MATMUL, level(60.0))
    lenient = Policies.parse(None, {"ops.*": "median:25%"})
    result = gate.check(lab, BASE, HEAD, lenient, max_processes=3)
    assert verdicts(result.rows) == [(MATMUL, "ambiguous", 1.2, 3, 1)]  # not a suspect
    assert result.exit_code == 0 and len(lab.calls) == 4


def test_an_ambiguous_row_gets_the_processes_that_decide_it() -> None:
    """The stale HEAD run alone is ambiguous under a 25% minimum; the comparison says 4
    more processes per side would decide, and with them HEAD's fresh processes (the same
    code as BASE) outweigh the stale one."""
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(50.0)}})
    lab.record(HEAD, MATMUL, level(60.0))
    result = gate.check(lab, BASE, HEAD, Policies.parse(None, {"ops.*": "median:25%"}))
    # First HEAD is brought up to 3 processes (2 more rounds), then the 1 more its
    # comparison asks for decides it.
    assert verdicts(result.rows) == [(MATMUL, "unchanged", 1.047, 6, 4)]
    pair = [(BASE, frozenset({MATMUL}), True), (HEAD, frozenset({MATMUL}), True)]
    assert lab.calls[4:] == pair * 3


def test_sides_recorded_with_one_process_each_are_brought_up_to_the_processes() -> None:
    """Nightly runs left one process at each commit: check measures two more each,
    interleaved, and decides on three a side."""
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(60.0)}})
    lab.record(BASE, MATMUL, level(50.0))
    lab.record(HEAD, MATMUL, level(60.0))
    result = gate.check(lab, BASE, HEAD, Policies(), processes=3, rounds=3)
    assert verdicts(result.rows) == [(MATMUL, "regressed", 1.2, 3, 3)]
    pair = [(BASE, frozenset({MATMUL}), True), (HEAD, frozenset({MATMUL}), True)]
    assert lab.calls[:2] == [(BASE, None, False), (HEAD, None, False)]  # nothing missing
    assert lab.calls[2:6] == pair * 2
    assert result.exit_code == 1


def test_compare_measure_interleaves_and_compares_the_fresh_processes_alone() -> None:
    lab = PlainLab({BASE: {MATMUL: level(50.0)}, HEAD: {MATMUL: level(55.0)}})
    lab.record(HEAD, MATMUL, level(80.0))  # stale: not part of a fresh comparison
    rows = gate.measure_and_compare(lab, BASE, HEAD, Policies(), processes=4)
    assert verdicts(rows) == [(MATMUL, "regressed", 1.1, 4, 4)]
    assert (
        lab.calls
        == [(BASE, None, True), (HEAD, None, True)]
        + [
            (BASE, frozenset({MATMUL}), True),
            (HEAD, frozenset({MATMUL}), True),
        ]
        * 3
    )


def test_the_same_commit_twice_is_refused_before_measuring() -> None:
    lab = PlainLab({})
    with pytest.raises(CommitbenchError, match=f"BASE and HEAD are the same commit {HEAD[:12]}"):
        gate.check(lab, HEAD, HEAD, Policies())
    assert lab.calls == []


# -- bisect ------------------------------------------------------------------------------

SHAS = [str(i) * 40 for i in range(8)]  # 0 is GOOD, 7 is BAD


def history(levels: Sequence[float]) -> PlainLab:
    return PlainLab({sha: {MATMUL: level(ms)} for sha, ms in zip(SHAS, levels, strict=True)})


def test_bisect_measures_both_ends_interleaved_then_names_the_first_slow_commit() -> None:
    lab = history([50, 50, 50, 50, 60, 60, 60, 60])
    found = bisecting.bisect(lab, SHAS[0], SHAS[7], SHAS[1:], MATMUL, processes=3)
    assert found.first_bad == SHAS[4] and found.stopped is None
    assert found.step.verdict == "regressed"
    assert [(p.index, p.side) for p in found.probes] == [(2, "good"), (4, "bad"), (3, "bad")]
    assert (
        lab.calls[:6]
        == [
            (SHAS[0], frozenset({MATMUL}), True),
            (SHAS[7], frozenset({MATMUL}), True),
        ]
        * 3
    )


def test_bisect_refuses_ends_that_do_not_differ_when_measured_together() -> None:
    lab = history([50, 50, 50, 50, 50, 50, 50, 50])
    lab.record(SHAS[7], MATMUL, level(70.0))  # a stale slow record does not count
    with pytest.raises(CommitbenchError, match=r"measured interleaved differ by \+0\.0%.*"):
        bisecting.bisect(lab, SHAS[0], SHAS[7], SHAS[1:], MATMUL, processes=3)


def test_a_probe_outside_the_range_of_the_ends_stops_the_search() -> None:
    lab = history([50, 50, 50, 80, 60, 60, 60, 60])
    found = bisecting.bisect(lab, SHAS[0], SHAS[7], SHAS[1:], MATMUL, processes=3)
    assert found.first_bad is None
    assert [(p.index, p.side) for p in found.probes] == [(2, "outside")]
    assert found.stopped is not None
    assert found.stopped.startswith(f"{SHAS[3][:12]} measured 80 ms, outside the range of")
    assert found.stopped.endswith("no first commit is named")


def test_a_probe_its_processes_cannot_place_stops_the_search() -> None:
    lab = history([50, 50, 50, 55, 60, 60, 60, 60])  # SHAS[3] halfway: two steps
    found = bisecting.bisect(lab, SHAS[0], SHAS[7], SHAS[1:], MATMUL, processes=3)
    assert found.first_bad is None
    assert [(p.index, p.side) for p in found.probes] == [(2, "between")]
    assert found.stopped is not None and "between the levels of" in found.stopped
