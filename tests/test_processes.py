"""One case measured in several worker processes: merged into one result whose samples
keep their process (runner.merge_processes)."""

from __future__ import annotations

from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import ResultRecord
from commitbench.runner.merge import merge_processes


def result(level: float, *, status: str = "ok", error: str | None = None) -> ResultRecord:
    return ResultRecord(
        CaseKey.of("ops.add"),
        status,
        error=error,
        duration_s=1.5,
        metrics=(
            MetricRecord.from_samples("time", [level, level * 1.01], unit="s")
            if status == "ok"
            else MetricRecord.from_samples("time", [level], unit="s"),
            MetricRecord(
                "gpu_util", "%", "higher", n=4, mean=level, median=level, min=level, max=level
            ),
        ),
    )


def test_samples_are_concatenated_and_tagged_with_their_process() -> None:
    merged = merge_processes([result(1.0), result(2.0), result(3.0)])
    time, util = merged.metrics
    assert time.samples == (1.0, 1.01, 2.0, 2.02, 3.0, 3.0300000000000002)
    assert time.processes == (0, 0, 1, 1, 2, 2)
    assert time.by_process() == {0: (1.0, 1.01), 1: (2.0, 2.02), 2: (3.0, 3.0300000000000002)}
    assert (time.n, time.median) == (6, (2.0 + 2.02) / 2)
    # A summary kept without samples: the median of the medians, the extremes' extremes.
    assert (util.n, util.median, util.mean, util.min, util.max) == (12, 2.0, 2.0, 1.0, 3.0)
    assert util.samples is None and util.processes is None
    assert merged.duration_s == 4.5


def test_a_process_that_failed_fails_the_case_and_is_named() -> None:
    merged = merge_processes([result(1.0), result(2.0, status="crashed", error="SIGSEGV")])
    assert (merged.status, merged.error, merged.duration_s) == (
        "crashed",
        "process 2 of 2: SIGSEGV",
        3.0,
    )
