"""The repeat loop with a fake clock: every sample and stopping point is exact."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import pytest

from commitbench.harness.timing import CpuTimer, Timing, TimingPolicy, measure, throughput_metrics


class FakeClock:
    """Time moves only when the timed function runs, by the next scripted duration."""

    def __init__(self, durations: Iterable[float]) -> None:
        self.now = 0.0
        self._durations = iter(durations)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def work(self) -> None:
        self.now += next(self._durations)
        self.calls += 1


def run(durations: Iterable[float], **policy: Any) -> tuple[FakeClock, Timing]:
    clock = FakeClock(durations)
    timing = measure(
        clock.work,
        policy=TimingPolicy(**policy),
        timer=CpuTimer(clock),
        clock=clock,
    )
    return clock, timing


def test_fixed_repeat_keeps_every_sample_after_the_warmup() -> None:
    clock, timing = run([9.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0], warmup=2, repeat=5)
    assert timing.samples == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert timing.warmup == 2
    assert timing.stop == "repeat"
    assert timing.stats.median == 3.0
    assert timing.stats.mean == 3.0
    assert timing.stats.median_ci is None
    assert clock.calls == 7


def test_stops_as_soon_as_the_median_ci_is_narrow_enough() -> None:
    _, timing = run(itertools.repeat(0.5), warmup=0, min_repeat=10, target_rel_ci=0.01)
    assert timing.samples == (0.5,) * 10
    assert timing.stop == "ci"


def test_budget_plans_batches_at_the_pace_seen_so_far() -> None:
    # 1, 3, 1, 3, ...: the median's CI stays [1, 3], wider than any target.
    _, timing = run(
        itertools.cycle([1.0, 3.0]), warmup=0, min_repeat=10, budget_s=30.0, target_rel_ci=0.01
    )
    # 10 calls take 20 s; 2 s/call leaves room for 5 (29 s); then 1 more (32 s) ends it.
    assert timing.samples == (1.0, 3.0) * 8
    assert timing.stop == "budget"
    assert timing.stats.median == 2.0
    assert timing.stats.median_ci == (1.0, 3.0)


def test_max_repeat_caps_the_doubling() -> None:
    _, timing = run(
        itertools.cycle([1.0, 3.0]), warmup=0, min_repeat=10, max_repeat=12, budget_s=1e9
    )
    assert len(timing.samples) == 12
    assert timing.stop == "max_repeat"


def test_warmup_lasts_for_a_count_and_a_time() -> None:
    clock, timing = run(itertools.repeat(2.0), warmup=1, warmup_s=5.0, repeat=1)
    assert timing.warmup == 3  # at 2, 4, 6 s: the third call crosses 5 s
    assert clock.calls == 4


def test_l2_flush_is_only_claimed_where_the_timer_can_flush() -> None:
    clock = FakeClock(itertools.repeat(1.0))
    timing = measure(
        clock.work,
        policy=TimingPolicy(warmup=0, repeat=2),
        timer=CpuTimer(clock),
        clock=clock,
        l2_flush=True,
    )
    assert timing.l2_flush is False
    assert timing.properties() == {
        "timer": "perf_counter",
        "warmup": 0,
        "l2_flush": False,
        "stop": "repeat",
        "warmup_stop": "count",
    }


def test_throughput_per_sample() -> None:
    clock = FakeClock([1.0, 2.0])
    timing = measure(
        clock.work, policy=TimingPolicy(warmup=0, repeat=2), timer=CpuTimer(clock), clock=clock
    )
    by_name = {
        m.name: m
        for m in throughput_metrics(
            "mm", timing, flops=2e12, bytes=1e9, peak_tflops=4.0, peak_source="test"
        )
    }
    assert by_name["mm.tflops"].samples == (2.0, 1.0)
    assert by_name["mm.tflops"].direction == "higher"
    assert by_name["mm.peak_pct"].samples == (50.0, 25.0)
    assert by_name["mm.gbps"].samples == (1.0, 0.5)
    assert by_name["mm.gbps"].unit == "GB/s"


def test_no_rate_from_a_zero_length_sample() -> None:
    clock = FakeClock([0.0])
    timing = measure(
        clock.work, policy=TimingPolicy(warmup=0, repeat=1), timer=CpuTimer(clock), clock=clock
    )
    assert throughput_metrics("x", timing, flops=1.0) == ()


@pytest.mark.parametrize(
    "bad",
    [
        {"warmup": -1},
        {"repeat": 0},
        {"min_repeat": 0},
        {"min_repeat": 5, "max_repeat": 4},
        {"budget_s": -1.0},
    ],
)
def test_policy_rejects_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TimingPolicy(**bad)


def test_warmup_runs_until_the_median_stops_moving() -> None:
    """A first call of 5 s, a window at 3 s, then two at 2 s: steady after the third
    window (within 2% of the one before)."""
    durations = [5.0] + [3.0] * 8 + [2.0] * 8 + [2.01] * 8 + [1.0] * 5
    _, timing = run(durations, steady_min_s=0.0, steady_max_s=1000.0, repeat=5)
    assert (timing.warmup, timing.properties()["warmup_stop"]) == (25, "steady")
    assert timing.samples == (1.0,) * 5


def test_warmup_lasts_at_least_its_minimum_time() -> None:
    _, timing = run(itertools.repeat(1 / 32), steady_min_s=0.1, repeat=1)
    assert (timing.warmup, timing.warmup_stop) == (4 + 8 + 8, "steady")


def test_warmup_that_never_settles_stops_at_its_bound() -> None:
    """Each call slower than the last: the windows' medians (5.5, then 13.5) never agree;
    past 100 s the warm-up stops anyway."""
    _, timing = run(itertools.count(1.0), steady_min_s=0.0, steady_max_s=100.0, repeat=1)
    assert (timing.warmup, timing.warmup_stop) == (17, "limit")
    assert timing.samples == (18.0,)


def test_a_call_longer_than_a_quarter_of_the_bound_warms_up_once() -> None:
    _, timing = run(itertools.repeat(30.0), repeat=1)
    assert (timing.warmup, timing.warmup_stop) == (1, "slow")
