"""Pairwise comparison on the two-level model: reference values of the t distribution,
Welch's test on log per-process values written out by hand, and constructed processes
whose verdicts are exact."""

from __future__ import annotations

import math
import statistics
import uuid
from datetime import datetime, timezone

import pytest

from commitbench.analysis import history, processes, reachable, twolevel
from commitbench.analysis.compare import (
    Policies,
    Policy,
    compare,
    compare_commits,
    compare_points,
)
from commitbench.analysis.processes import Process
from commitbench.model import state
from commitbench.model.points import Point

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)

# scipy.stats.t.ppf(q, df) and 2 * scipy.stats.t.sf(t, df), scipy 1.17.1.
T_QUANTILES = [
    (0.975, 1, 12.706204736174694),
    (0.975, 4, 2.7764451051977934),
    (0.975, 10, 2.228138851986274),
    (0.995, 10, 3.16927267261695),
    (0.975, 7.5, 2.333039626864974),
]


@pytest.mark.parametrize(("q", "df", "expected"), T_QUANTILES)
def test_t_quantiles_match_scipy(q: float, df: float, expected: float) -> None:
    assert twolevel.t_quantile(q, df) == pytest.approx(expected, rel=1e-9)


def test_two_sided_t_tail_matches_scipy() -> None:
    assert twolevel.t_sf2(2.0, 5) == pytest.approx(0.10193947882985835, rel=1e-12)
    assert twolevel.t_sf2(0.0, 3) == 1.0


def proc(level: float, *, cal: float | None = None, n: int = 15) -> Process:
    """`n` samples within +-0.7% of `level`, whose median is `level` exactly."""
    return Process(tuple(level * (1 + 0.001 * (k - n // 2)) for k in range(n)), cal)


BASE = [1.00, 1.02, 0.98, 1.01, 0.99]
HEAD = [1.10, 1.12, 1.08, 1.11, 1.09]


def test_welch_on_log_per_process_medians() -> None:
    c = compare([proc(v) for v in BASE], [proc(v) for v in HEAD], direction="lower")
    yb, yh = [math.log(v) for v in BASE], [math.log(v) for v in HEAD]
    diff = statistics.fmean(yh) - statistics.fmean(yb)
    vb, vh = statistics.variance(yb) / 5, statistics.variance(yh) / 5
    se = math.sqrt(vb + vh)
    df = (vb + vh) ** 2 / (vb**2 / 4 + vh**2 / 4)
    q = twolevel.t_quantile(0.975, df)
    assert c.ratio == pytest.approx(math.exp(diff), rel=1e-12)
    assert c.ci_low == pytest.approx(math.exp(diff - q * se), rel=1e-12)
    assert c.ci_high == pytest.approx(math.exp(diff + q * se), rel=1e-12)
    assert c.p_value == pytest.approx(twolevel.t_sf2(diff / se, df), rel=1e-12)
    assert c.base == pytest.approx(math.exp(statistics.fmean(yb)), rel=1e-12)
    assert c.verdict == "regressed"
    assert (c.processes_base, c.processes_head, c.more, c.note) == (5, 5, None, "")
    pooled = math.sqrt((statistics.variance(yb) * 4 + statistics.variance(yh) * 4) / 8)
    assert c.spread == pytest.approx(math.expm1(pooled), rel=1e-12)


def test_direction_decides_regression_or_improvement() -> None:
    b, h = [proc(v) for v in BASE], [proc(v) for v in HEAD]
    assert compare(b, h, direction="higher").verdict == "improved"  # e.g. TFLOP/s
    assert compare(h, b, direction="higher").verdict == "regressed"
    assert compare(h, b, direction="lower").verdict == "improved"


def test_one_process_a_side_is_ambiguous_however_tight_its_samples() -> None:
    """What issue 13 saw: ±0.5% within a run, 11% between runs. One process per side
    says nothing about the second."""
    c = compare([proc(1.0)], [proc(1.4)], direction="lower")
    assert (c.verdict, c.ci_low, c.ci_high, c.p_value, c.spread, c.more) == (
        "ambiguous",
        None,
        None,
        None,
        None,
        None,
    )
    assert c.ratio == pytest.approx(1.4, rel=1e-12)
    assert c.note == "one process per side: the spread between processes is unknown"


def test_processes_that_disagree_make_a_big_change_ambiguous_and_say_how_many_more() -> None:
    base = [proc(v) for v in (1.00, 1.12, 0.90)]
    head = [proc(v) for v in (1.10, 0.98, 1.21)]
    c = compare(base, head, direction="lower")
    assert c.change > 0.05 and c.verdict == "ambiguous"
    assert c.more == 20
    assert c.note == f"about {c.more} more processes per side would decide"
    # With that many more processes at the same spread, the verdict is decided.
    e = twolevel.estimate([1.00, 1.12, 0.90], [1.10, 0.98, 1.21])
    assert e.var_base is not None and e.var_head is not None
    n = 3 + c.more
    later = twolevel.Estimate(
        e.diff,
        math.sqrt(e.var_base / n + e.var_head / n),
        float(2 * n - 2),
        e.var_base,
        e.var_head,
        n,
        n,
        e.spread,
    )
    assert twolevel.decide(later, 0.05, 0.01) != "ambiguous"


def test_inside_the_minimum_effect_is_unchanged_even_when_significant() -> None:
    base = [proc(v) for v in (1.000, 1.001, 0.999, 1.0005, 0.9995)]
    head = [proc(v * 1.02) for v in (1.000, 1.001, 0.999, 1.0005, 0.9995)]
    c = compare(base, head, direction="lower")
    assert c.p_value is not None and c.p_value < 1e-6  # real, but 2% < 5%
    assert c.verdict == "unchanged"
    assert compare(base, head, direction="lower", policy=Policy.parse("median:1%")).verdict == (
        "regressed"
    )


def test_one_process_against_several_pools_their_variance() -> None:
    c = compare([proc(1.0)], [proc(v) for v in HEAD], direction="lower")
    yh = [math.log(v) for v in HEAD]
    se = math.sqrt(statistics.variance(yh) * (1 + 1 / 5))
    q = twolevel.t_quantile(0.975, 4)
    assert c.ci_low == pytest.approx(math.exp(statistics.fmean(yh) - q * se), rel=1e-12)
    assert c.verdict == "regressed"


def test_a_process_in_another_machine_state_is_flagged_and_the_calibration_adjusts() -> None:
    """Each process runs 20% slower per 20% slower calibration: the calibration explains
    the spread, so the adjusted interval is far narrower than the raw one."""
    cals = [7.4, 7.5, 11.3, 7.45, 7.4, 7.5]
    base = [proc(1.0 * c / 7.4, cal=c) for c in cals[:3]]
    head = [proc(1.1 * c / 7.4, cal=c) for c in cals[3:]]
    raw = compare(
        [Process(p.samples) for p in base], [Process(p.samples) for p in head], direction="lower"
    )
    adjusted = compare(base, head, direction="lower")
    assert adjusted.flagged == 1
    assert adjusted.adjusted
    assert raw.ci_low is not None and raw.ci_high is not None
    assert adjusted.ci_low is not None and adjusted.ci_high is not None
    assert adjusted.ci_high - adjusted.ci_low < (raw.ci_high - raw.ci_low) / 5
    assert adjusted.ratio == pytest.approx(1.1, rel=0.01)
    assert adjusted.note == "1 process in a different machine state; adjusted for the calibration"


def test_mean_and_min_statistics_are_taken_per_process() -> None:
    base, head = [Process((1.0, 1.0, 1.0, 4.0))], [Process((1.2, 1.2, 1.2, 1.2))]
    assert compare(base, head, direction="lower", policy=Policy("mean", 0.05)).ratio == (
        pytest.approx(1.2 / 1.75, rel=1e-12)
    )
    assert compare(base, head, direction="lower", policy=Policy("min", 0.05)).ratio == (
        pytest.approx(1.2, rel=1e-12)
    )


def test_values_at_zero_compare_without_a_ratio_model() -> None:
    assert compare([Process((0.0,))], [Process((0.0,))], direction="lower").verdict == "unchanged"
    assert compare([Process((0.0,))], [Process((1.0,))], direction="lower").verdict == "ambiguous"


def test_policy_strings() -> None:
    assert Policy.parse("median:5%") == Policy("median", 0.05)
    assert Policy.parse(" mean : 12.5 % ") == Policy("mean", 0.125)
    assert str(Policy.parse("min:3%")) == "min:3%"
    for bad in ("median", "p99:5%", "median:-1%", "median:5"):
        with pytest.raises(ValueError, match="is not like median:5%"):
            Policy.parse(bad)


def test_per_case_overrides_last_match_wins() -> None:
    p = Policies.parse("median:5%", {"matmul.*": "median:3%", "matmul.*int8*": "mean:10%"})
    assert p.for_case("attention.sdpa[d=64]") == Policy("median", 0.05)
    assert p.for_case("matmul.matmul[impl=fp16]") == Policy("median", 0.03)
    assert p.for_case("matmul.matmul[impl=int8]") == Policy("mean", 0.10)


# -- points: processes of runs, state metrics --------------------------------------------


def point(
    sha: str,
    metric: str,
    samples: tuple[float, ...],
    processes: tuple[int, ...] | None,
    run: uuid.UUID,
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
        run_id=run,
        run_started_at=T0,
        case="ops.add",
        metric=metric,
        unit="ms",
        direction="lower",
        median=samples[0],
        ci_low=None,
        ci_high=None,
        samples=samples,
        n=len(samples),
        first_parent=None,
        processes=processes,
    )


def three_processes(
    sha: str, levels: tuple[float, float, float], cals: tuple[float, ...]
) -> list[Point]:
    run = uuid.uuid4()
    samples = tuple(v * f for v in levels for f in (0.999, 1.0, 1.001))
    return [
        point(sha, "time", samples, (0, 0, 0, 1, 1, 1, 2, 2, 2), run),
        point(sha, state.CALIBRATION_START, cals, (0, 1, 2), run),
        point(sha, state.CALIBRATION_END, cals, (0, 1, 2), run),
    ]


def test_points_are_split_by_process_and_state_metrics_are_not_compared() -> None:
    a, b = "a" * 40, "b" * 40
    results = three_processes(a, (1.0, 1.01, 0.99), (7.4, 7.4, 7.4)) + three_processes(
        b, (1.10, 1.11, 1.09), (7.4, 7.5, 11.3)
    )
    (row,) = compare_commits(a, b, results)
    assert row.metric == "time"
    c = row.comparison
    assert (c.processes_base, c.processes_head, c.flagged) == (3, 3, 1)
    assert (row.n_base, row.n_head, row.runs_base, row.runs_head) == (9, 9, 1, 1)
    assert c.verdict == "regressed"
    assert compare_points(results[:3], results[3:]) == [row]


def test_results_without_processes_are_one_process_each() -> None:
    a, b = "a" * 40, "b" * 40
    results = [point(a, "time", (1.0, 1.0, 1.0), None, uuid.uuid4())] + [
        point(b, "time", (v, v, v), None, uuid.uuid4()) for v in (1.1, 1.1)
    ]
    (row,) = compare_commits(a, b, results)
    assert (row.comparison.processes_base, row.comparison.processes_head) == (1, 2)
    assert (row.runs_base, row.runs_head) == (1, 2)


# -- reachability of the policy ------------------------------------------------------------


def test_detectable_change_follows_welchs_t_at_equal_spreads() -> None:
    q = twolevel.t_quantile(1 - 0.01 / 2, 4)
    assert reachable.detectable(0.02, 3) == pytest.approx(
        math.expm1(q * math.log1p(0.02) * math.sqrt(2 / 3)), rel=1e-12
    )
    assert reachable.detectable(0.02, 1) == math.inf


def test_a_spread_that_hides_the_minimum_effect_is_named_with_the_processes_needed() -> None:
    spreads = [
        ("a.quiet", "time", 0.005, 3),
        ("a.noisy", "time", 0.05, 3),
        ("x", "state.load_avg", 1.0, 3),
    ]
    (found,) = reachable.unreachable(spreads, Policies())
    needed = next(n for n in range(4, 70) if reachable.detectable(0.05, n) < 0.05)
    assert (found.case, found.processes, found.needed) == ("a.noisy", 3, needed)
    assert reachable.unreachable_line([found]) == (
        "the spread between processes makes median:5% unreachable for 1 case metric with 3 "
        f"processes per side (worst: a.noisy time ±5.0%, needs about {needed} processes per "
        "side); see commitbench doctor"
    )
    assert reachable.unreachable_line([]) is None


# -- contention (issue 13: under changing load, ambiguous or contention, never a false
# regression) ----------------------------------------------------------------------------


def test_contended_processes_are_left_out_when_two_quiet_ones_remain_per_side() -> None:
    """Two processes per side ran quietly and agree; one per side waited for a core and
    ran 30% slow: the test is the quiet ones', and the note says what was left out."""
    base = [proc(1.0), proc(1.002), Process(proc(1.3).samples, contended=True)]
    head = [proc(1.0), proc(1.001), Process(proc(1.0).samples, contended=True)]
    c = compare(base, head, direction="lower")
    quiet = compare(base[:2], head[:2], direction="lower")
    assert (c.ratio, c.ci_low, c.ci_high, c.verdict) == (
        quiet.ratio,
        quiet.ci_low,
        quiet.ci_high,
        "unchanged",
    )
    assert (c.processes_base, c.processes_head, c.contended, c.left_out) == (2, 2, 2, True)
    assert c.note == "2 contended processes left out"


def test_uneven_contention_holds_a_decided_change_at_ambiguous() -> None:
    """Same code; the head's three processes all waited for a core and ran 10% slower:
    the raw test says regressed, contention on one side only holds it at ambiguous."""
    base = [proc(1.0), proc(1.002), proc(0.998)]
    head = [Process(proc(v).samples, contended=True) for v in (1.10, 1.102, 1.098)]
    raw = compare(base, [Process(p.samples) for p in head], direction="lower")
    assert raw.verdict == "regressed"
    c = compare(base, head, direction="lower")
    assert (c.verdict, c.contended, c.contention_decides, c.more) == ("ambiguous", 3, True, None)
    assert c.ratio == raw.ratio
    assert c.note == (
        "contention: 3 processes waited for a core, unevenly between the sides; "
        "measure on a quieter machine"
    )


def test_even_contention_keeps_the_verdict_and_says_so() -> None:
    """Every process of both sides waited for a core, interleaved: the load fell on both
    alike, so a 10% step is still a regression."""
    base = [Process(proc(v).samples, contended=True) for v in (1.0, 1.002, 0.998)]
    head = [Process(proc(v).samples, contended=True) for v in (1.10, 1.102, 1.098)]
    c = compare(base, head, direction="lower")
    assert (c.verdict, c.contended, c.contention_decides) == ("regressed", 6, False)
    assert c.note == "6 contended processes on both sides alike"


def test_points_mark_a_process_contended_by_its_wall_per_cpu() -> None:
    a, b = "a" * 40, "b" * 40
    run_a, run_b = uuid.uuid4(), uuid.uuid4()
    samples = tuple(v * f for v in (1.0, 1.01, 0.99) for f in (0.999, 1.0, 1.001))
    slow = tuple(v * f for v in (1.0, 1.01, 1.30) for f in (0.999, 1.0, 1.001))
    by = (0, 0, 0, 1, 1, 1, 2, 2, 2)
    results = [
        point(a, "time", samples, by, run_a),
        point(a, state.WALL_PER_CPU, (1.0, 1.02, 1.0), (0, 1, 2), run_a),
        point(b, "time", slow, by, run_b),
        point(b, state.WALL_PER_CPU, (1.0, 1.0, 1.8), (0, 1, 2), run_b),
    ]
    (row,) = compare_commits(a, b, results)
    c = row.comparison
    assert (c.processes_base, c.processes_head, c.contended, c.left_out) == (3, 2, 1, True)
    base_mean = (1.0 * 1.01 * 0.99) ** (1 / 3)
    assert c.ratio == pytest.approx(math.sqrt(1.0 * 1.01) / base_mean, rel=1e-12)


def test_the_calibration_around_the_case_is_preferred_to_the_workers() -> None:
    """A worker's start and end calibrations say 7.4 ms; the one timed around the case
    says 11.3 ms for process 2: that process is the one in another state."""
    run = uuid.uuid4()
    sha = "a" * 40
    points = [
        point(sha, state.CALIBRATION_START, (7.4, 7.4, 7.4), (0, 1, 2), run),
        point(sha, state.CALIBRATION_END, (7.4, 7.6, 7.4), (0, 1, 2), run),
        point(sha, state.CALIBRATION_CASE, (7.5, 7.5, 11.3), (0, 1, 2), run),
    ]
    got = processes.calibrations(points)
    assert [got[(run, "ops.add", k)] for k in range(3)] == [7.5, 7.5, 11.3]
    assert processes.calibrations(points[:2])[(run, "ops.add", 1)] == pytest.approx(7.5)


# -- the history's spread between runs (analysis/history.py) -------------------------------


def test_the_history_pools_the_spread_within_commits_measured_more_than_once() -> None:
    run_a, run_b, run_c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    levels_a, levels_b = (1.0, 1.02, 0.98), (2.0, 2.04)
    points = [
        point(a, "time", tuple(levels_a), (0, 1, 2), run_a),
        point(b, "time", tuple(levels_b), (0, 1), run_b),
        point(c, "time", (5.0,), (0,), run_c),  # one process: nothing to learn
        point(a, state.CALIBRATION_START, (7.0, 9.0, 8.0), (0, 1, 2), run_a),  # not a case
    ]
    (key, prior), *others = history.priors(points, Policies()).items()
    assert others == []
    assert key == ("f" * 64, "smoke", "ops.add", "time", "ms", "lower")
    ya, yb = [math.log(v) for v in levels_a], [math.log(v) for v in levels_b]
    ss = sum((y - statistics.fmean(ya)) ** 2 for y in ya)
    ss += sum((y - statistics.fmean(yb)) ** 2 for y in yb)
    assert (prior.df, prior.commits) == (3, 2)
    assert prior.variance == pytest.approx(ss / 3, rel=1e-12)


def test_a_prior_decides_one_process_a_side_and_only_then() -> None:
    prior = twolevel.Prior(variance=0.01**2, df=6, commits=3)
    one = compare([proc(1.0)], [proc(1.10)], direction="lower", prior=prior)
    q = twolevel.t_quantile(0.975, 6)
    assert (one.verdict, one.history, one.processes_base) == ("regressed", prior, 1)
    assert one.ci_low == pytest.approx(1.10 * math.exp(-q * math.sqrt(2) * 0.01), rel=1e-9)
    assert one.note == (
        "one process per side: the spread between runs (±1.0%) is the history's, "
        "3 commits measured more than once"
    )
    # Too few degrees of freedom: no interval, ambiguous as without a history.
    thin = compare(
        [proc(1.0)], [proc(1.10)], direction="lower", prior=twolevel.Prior(0.01**2, 3, 2)
    )
    assert (thin.verdict, thin.ci_low, thin.history) == ("ambiguous", None, None)
    # Processes of its own: the prior is not used.
    own = compare([proc(1.0), proc(1.01)], [proc(1.10), proc(1.11)], direction="lower", prior=prior)
    assert own.history is None
    assert own == compare([proc(1.0), proc(1.01)], [proc(1.10), proc(1.11)], direction="lower")


# -- the machine's state differing between the sides (the calibration) --------------------


def _host(level: float, cal: float) -> Process:
    return Process(proc(level).samples, cal, host_timed=True)


def test_a_change_that_the_calibration_shows_too_is_held_at_ambiguous() -> None:
    """Same code; every base process ran on a machine 14% slower (a busy sibling core:
    no waiting, so no contention), and its CPU calibration says so: not `improved`."""
    base = [_host(v, c) for v, c in ((1.14, 8.5), (1.141, 8.52), (1.139, 8.48))]
    head = [_host(v, c) for v, c in ((1.0, 7.4), (1.001, 7.42), (0.999, 7.38))]
    raw = compare(
        [Process(p.samples) for p in base], [Process(p.samples) for p in head], direction="lower"
    )
    assert raw.verdict == "improved"
    c = compare(base, head, direction="lower")
    assert (c.verdict, c.more) == ("ambiguous", None)
    assert c.state_moved == pytest.approx(7.4 / 8.5, rel=1e-3)
    assert c.note.startswith(
        "the machine's state differed between the sides (calibration -12.9%, the same way "
        "as the change); measure on a quieter machine"
    )


def test_the_calibration_holds_nothing_it_cannot_explain() -> None:
    """A 10% regression on an even machine stays one; so does one whose calibration
    moved the other way, and one timed on a GPU (its calibration is the launch loop)."""
    base = [_host(v, 7.4) for v in (1.0, 1.001, 0.999)]
    even = [_host(v, 7.4) for v in (1.1, 1.101, 1.099)]
    assert compare(base, even, direction="lower").verdict == "regressed"
    faster_machine = [_host(v, 6.5) for v in (1.1, 1.101, 1.099)]
    assert compare(base, faster_machine, direction="lower").verdict == "regressed"
    slow_base = [_host(v, 8.5) for v in (1.0, 1.001, 0.999)]
    gpu = [Process(p.samples, p.calibration) for p in slow_base]
    gpu_head = [Process(proc(v).samples, 7.4) for v in (1.1, 1.101, 1.099)]
    assert compare(gpu, gpu_head, direction="lower").verdict == "regressed"
    # A throughput that fell while HEAD's machine was slower: held.
    tput_b = [_host(v, 7.4) for v in (100.0, 100.1, 99.9)]
    tput_h = [_host(v, 8.5) for v in (80.0, 80.1, 79.9)]
    assert compare(tput_b, tput_h, direction="higher").verdict == "ambiguous"
